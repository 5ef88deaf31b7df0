-- The notification carries the entry's commit time (changed_at) too, so a
-- listener can measure how long a change took to reach its subscribers
-- without reading the journal back. Only the INSERT ... RETURNING and the
-- payload differ from 002.

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
    INSERT INTO todo_changes (position, op, todo_id, todo)
    VALUES (pos, change_op, row_state.id, snapshot)
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
    RETURN NULL;
END
$$;
