-- Journal at commit time: the commit-order lock is held only while a
-- transaction commits, not from its first statement on, so writers no longer
-- queue behind each other's whole transactions. NOTIFY carries the row when it
-- fits, so listeners need not read the journal back for every change.

DROP TRIGGER todos_serialize ON todos;
DROP FUNCTION todos_serialize();
DROP TRIGGER todos_journal_insert_delete ON todos;
DROP TRIGGER todos_journal_update ON todos;

CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text;
    row_state todos;
    pos bigint;
    snapshot jsonb;
    payload text;
BEGIN
    -- These triggers are deferred: they run as the transaction commits, in
    -- the order its changes were made. A sequence alone is not commit order
    -- (two writers can take 5 and 6 and commit 6 first, and a reader at 6
    -- would skip 5 forever); holding this lock until the commit is done
    -- makes positions increase in commit order. Every row lock the
    -- transaction needs is already held by now, so waiting here cannot
    -- deadlock with another writer.
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
    VALUES (pos, change_op, row_state.id, snapshot);
    payload := json_build_object('position', pos, 'op', change_op, 'id', row_state.id, 'todo', snapshot)::text;
    -- NOTIFY payloads stop short of 8000 bytes; a bigger row is read back
    -- from the journal by the listener.
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', row_state.id)::text;
    END IF;
    PERFORM pg_notify('todo_changes', payload);
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER todos_journal_insert_delete AFTER INSERT OR DELETE ON todos
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION todos_journal();

CREATE CONSTRAINT TRIGGER todos_journal_update AFTER UPDATE ON todos
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION todos_journal();
