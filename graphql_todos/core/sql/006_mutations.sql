-- Each numbered mutation applied once, with a verdict and a cursor (issue
-- 20; docs/design/offline.md, section 1).

-- Journal entries made by a numbered mutation carry its key
-- ("<principal>:<client>:<seq>", set transaction-locally by the mutation's
-- own statement): a retry finds its rows and cursor there. Only keyed
-- entries are indexed.
ALTER TABLE todo_changes ADD COLUMN mutation text;
CREATE INDEX todo_changes_mutation ON todo_changes (mutation) WHERE mutation IS NOT NULL;

-- As 004, and: the entry carries the key of the mutation that made it, and
-- a session that asks for it (the app's pool sets app.cursor_notice = on)
-- is told each entry's position by a NOTICE at commit, in the statement's
-- own round trip: the highest is the mutation's cursor.
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text;
    row_state todos;
    pos bigint;
    snapshot jsonb;
    committed timestamptz;
    payload text;
BEGIN
    -- Deferred to commit time; the lock makes positions follow commit order
    -- (see 002_journal_at_commit.sql).
    PERFORM pg_advisory_xact_lock(7305202417);
    IF TG_OP = 'INSERT' THEN
        change_op := 'created';
        row_state := NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        change_op := 'updated';
        row_state := NEW;
    ELSE
        change_op := 'deleted';
        row_state := OLD;
    END IF;
    pos := nextval('todo_changes_position');
    snapshot := to_jsonb(row_state);
    INSERT INTO todo_changes (position, op, todo_id, todo, mutation)
    VALUES (pos, change_op, row_state.id, snapshot, nullif(current_setting('app.mutation', true), ''))
    RETURNING changed_at INTO committed;
    payload := json_build_object(
        'position', pos, 'op', change_op, 'id', row_state.id, 'changed_at', committed, 'todo', snapshot
    )::text;
    -- NOTIFY payloads stop short of 8000 bytes; a bigger row is read back
    -- from the journal by the listener.
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', row_state.id)::text;
    END IF;
    PERFORM pg_notify('todo_changes', payload);
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN NULL;
END
$$;

-- One row per numbered mutation: (principal, client, seq), written by the
-- mutation's own statement, so it commits or rolls back with the change, and
-- a retry or a concurrent duplicate meets the primary key. An applied
-- mutation's rows and cursor are its journal entries; only what journaled
-- nothing (a write that changed nothing, a rejection) keeps them here.
-- `principal` is who acted (today always the local person; issue 19 adds
-- people): keys are scoped by it, with no foreign key.
CREATE TABLE mutations (
    principal    uuid        NOT NULL,
    client_id    uuid        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    fingerprint  bytea       NOT NULL,  -- sha256 of the request less its key
    verdict      text        NOT NULL CHECK (verdict IN ('applied', 'rejected')),
    -- NULL: the rows are the journal entries with this key. Else the rows
    -- of a write that changed nothing (a JSON array), or a rejection's
    -- {"code", "message", "row"?}.
    result       jsonb,
    -- NULL: the newest journal entry with this key. Else the cursor of
    -- what journaled nothing: where the journal stood when it was settled.
    position     bigint,
    created_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, client_id, seq)
);
CREATE INDEX mutations_created ON mutations (created_time);
