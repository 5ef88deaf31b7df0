-- The journal's membership index moved off todo_changes (issue 21: one
-- UPDATE of 1,000 watched rows, the database's part). Every entry's INSERT
-- opened todo_changes_membership (007), built its IndexInfo and prepared
-- its predicate again (a row trigger's INSERT is an executor of its own),
-- though only a member_added or member_removed entry goes in it: 8k
-- instructions a row (docs/bench-ab-journal.md, ninth round). Those entries
-- are now found in todo_changes_members, a small table written with each of
-- them by journal_write (members_journal's writer), for a reader's lists at
-- a cursor (core/repository.py); in decoded mode the sequencer's statement
-- writes it (core/pgoutput.py); 016 drops the index. An entry deleted (retention, or by hand)
-- takes its row with it. todo_changes_mutation (006) stays: a numbered
-- mutation's entry is one per write, and a row of a table of its own cost
-- each numbered write more than the index saves it (the ninth round).
-- Same entries, positions, payloads, checks and errors as 014;
-- journal_write loses its row case, which no trigger reaches since 014.

-- The commit-order lock, which 007's writers of member entries take before
-- they write one (members_journal): an entry of 014's journal_write (no
-- row) has committed before the copy below reads the journal, and a writer
-- waiting for this migration calls 015's journal_write. The index goes in
-- 016, a transaction of its own: DROP INDEX waits for every transaction that
-- read todo_changes, and one of them may wait at its commit for this lock
-- (a deadlock, the migration rolled back, when both were here).
SELECT pg_advisory_xact_lock(7305202417);

CREATE TABLE todo_changes_members (
    person_id uuid       NOT NULL,
    position  bigint     NOT NULL,
    list_id   uuid       NOT NULL,
    op        journal_op NOT NULL,
    PRIMARY KEY (person_id, position)
);
INSERT INTO todo_changes_members (person_id, position, list_id, op)
SELECT person_id, position, list_after, op FROM todo_changes WHERE op IN ('member_added', 'member_removed');

-- Once per DELETE statement (retention deletes a batch at a time), not per
-- entry written: a statement trigger with the deleted entries.
CREATE FUNCTION todo_changes_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM todo_changes_members m USING gone g
    WHERE m.person_id = g.person_id AND m.position = g.position AND g.op IN ('member_added', 'member_removed');
    RETURN NULL;
END
$$;
CREATE TRIGGER todo_changes_forget AFTER DELETE ON todo_changes
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION todo_changes_forget();

-- In decoded mode (011) journal_write is the switch's stager, and trigger
-- mode's writer waits in journal_mode.restore for a switch back: there the
-- new writer goes to restore, in the old one's place, and the stager stays
-- (as 012).
CREATE TEMPORARY TABLE journal_stager ON COMMIT DROP AS
    SELECT pg_get_functiondef('journal_write'::regproc) AS definition FROM journal_mode WHERE mode = 'decoded';

-- As 012, and: a member_added or member_removed entry's row of
-- todo_changes_members; no row case (a row's entry is todos_journal's since
-- 014; a move's has its row before).
CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint;
    committed timestamptz;
    payload text;
    called text;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (nextval('todo_changes_position'), change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail,
            p_before_row, nullif(current_setting('app.mutation', true), ''))
    RETURNING position, changed_at INTO pos, committed;
    IF change_op IN ('member_added', 'member_removed') THEN
        INSERT INTO todo_changes_members (person_id, position, list_id, op) VALUES (p_person, pos, p_after, change_op);
    END IF;
    payload := (jsonb_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                   'list_before', p_before, 'list_after', p_after, 'person', p_person)
                || jsonb_strip_nulls(jsonb_build_object('todo', p_todo, 'detail', p_detail,
                                                        'before', p_before_row)))::text;
    -- NOTIFY payloads stop short of 8000 bytes; past that the head alone
    -- goes, and the listener reads the entry back.
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                     'list_before', p_before, 'list_after', p_after, 'person', p_person)::text;
    END IF;
    called := pg_notify('todo_changes', payload);
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN pos;
END
$$;

-- restore holds the two triggers' definitions, then journal_write's, then
-- journal_expand's (core/journal_mode.py's TO_DECODED): journal_write's is
-- the first function's, up to the second's (as 012).
UPDATE journal_mode SET restore = overlay(restore PLACING pg_get_functiondef('journal_write'::regproc)
    FROM position('CREATE OR REPLACE FUNCTION' IN restore)
    FOR position(E';\nCREATE OR REPLACE FUNCTION' IN substr(restore, position('CREATE OR REPLACE FUNCTION' IN restore))) - 1)
WHERE mode = 'decoded';
DO $$
BEGIN
    EXECUTE coalesce((SELECT definition FROM journal_stager), '');
END
$$;
