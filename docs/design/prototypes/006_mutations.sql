-- PROTOTYPE of the migration for issue 20 (each mutation once, with a
-- verdict and a cursor), applied after 005_people.sql. Run by experiments.py.

-- Journal entries made by a numbered mutation carry its key
-- ("<person>:<client>:<seq>", from set_config('app.mutation', ..., true) in
-- the mutation's statement): a retry finds its cursor there. Only those
-- entries are indexed.
ALTER TABLE todo_changes ADD COLUMN mutation text;
CREATE INDEX todo_changes_mutation ON todo_changes (mutation) WHERE mutation IS NOT NULL;

-- The journal writer also remembers, for this transaction, the last position
-- it wrote (set_config(..., true) is transaction-local), and tells an
-- unnumbered mutation's client its cursor.
CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint := nextval('todo_changes_position');
    committed timestamptz;
    payload text;
    head jsonb;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (pos, change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail, p_before_row,
            nullif(current_setting('app.mutation', true), ''))
    RETURNING changed_at INTO committed;
    head := jsonb_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                               'list_before', p_before, 'list_after', p_after, 'person', p_person);
    payload := (head || jsonb_strip_nulls(jsonb_build_object('todo', p_todo, 'detail', p_detail, 'before', p_before_row)))::text;
    IF octet_length(payload) >= 7900 THEN
        payload := head::text;
    END IF;
    PERFORM pg_notify('todo_changes', payload);
    PERFORM set_config('app.last_position', pos::text, true);
    -- A mutation's reply cursor (app.mutation or app.cursor_notice set by its
    -- statement): each entry's position as a NOTICE at commit, in the
    -- statement's own round trip; the highest wins.
    IF current_setting('app.cursor_notice', true) = 'on' OR nullif(current_setting('app.mutation', true), '') IS NOT NULL THEN
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN pos;
END
$$;

-- One row per mutation a client numbered: (its person, its client id, its
-- sequence number). Written by the mutation's own statement (a CTE), so it
-- commits or rolls back with the change, and a retry or a concurrent
-- duplicate meets its primary key. What the reply is made of is found where
-- it already is: an applied mutation's rows and cursor are its journal
-- entries (todo_changes.mutation); only a mutation that journaled nothing
-- stores them here.
CREATE TABLE mutations (
    person_id    uuid        NOT NULL,  -- the principal; the service token has a fixed id
    client_id    uuid        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    fingerprint  bytea       NOT NULL,  -- sha256 of the request less its key (offline.md)
    verdict      text        NOT NULL CHECK (verdict IN ('applied', 'rejected')),
    -- NULL: the rows are the journal entries with this key. Else: a write that
    -- changed nothing, its rows as returned (to_jsonb); a rejection,
    -- {"code", "message", "row"?}.
    result       jsonb,
    -- NULL: the newest journal entry with this key. Else the cursor of a
    -- mutation that journaled nothing: the newest entry of the row it named
    -- when it was settled (0: none).
    position     bigint,
    created_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, client_id, seq)
);
CREATE INDEX mutations_created ON mutations (created_time);

-- A numbered mutation whose statement journaled nothing (no NOTICE came: a
-- write that changed nothing) is settled by the service before it replies:
-- its rows and the newest entry of the row it named. Entries that commit
-- later have higher positions, so a plain read is in commit order.
CREATE FUNCTION mutation_unchanged(p_person uuid, p_client uuid, p_seq bigint, p_rows jsonb)
RETURNS bigint LANGUAGE sql AS $$
    UPDATE mutations
    SET result = p_rows,
        position = (SELECT coalesce(max(position), 0) FROM todo_changes
                    WHERE todo_id = (p_rows #>> '{0,id}')::uuid)
    WHERE (person_id, client_id, seq) = (p_person, p_client, p_seq) AND position IS NULL
    RETURNING position
$$;
