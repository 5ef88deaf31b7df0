-- Todos, and a journal of every change to them in commit order.
-- Runs on PostgreSQL 13 to 18: gen_random_uuid() is built in since 13.

-- Times stay within what every client can represent (Python's datetime and
-- JavaScript's Date stop at year 9999; 'infinity' is no date at all): a row
-- written by psql that no client could read would stall every live feed.
CREATE TABLE todos (
    id           uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    created_time timestamptz  NOT NULL DEFAULT now()
        CHECK (created_time BETWEEN '0001-01-02' AND '9999-12-30'),
    updated_time timestamptz  NOT NULL DEFAULT now()
        CHECK (updated_time BETWEEN '0001-01-02' AND '9999-12-30'),
    title        varchar(512) NOT NULL CHECK (btrim(title) <> ''),
    completed    boolean      NOT NULL DEFAULT false
);

CREATE INDEX todos_order ON todos (created_time, id);

-- One row per committed change. "todo" is the row after the change (before it,
-- for a delete), so a subscriber resuming from any position sees each state.
CREATE TABLE todo_changes (
    position   bigint      PRIMARY KEY,
    op         text        NOT NULL CHECK (op IN ('created', 'updated', 'deleted')),
    todo_id    uuid        NOT NULL,
    todo       jsonb       NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE SEQUENCE todo_changes_position OWNED BY todo_changes.position;

CREATE FUNCTION todos_serialize() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A sequence alone is not commit order: two writers can take 5 and 6 and
    -- commit 6 first, and a reader at 6 would skip 5 forever. Holding this
    -- lock until commit makes journal positions increase in commit order.
    -- It is taken before the statement locks any row, so a writer waiting
    -- for it holds no row another writer needs (no deadlock).
    PERFORM pg_advisory_xact_lock(7305202417);
    RETURN NULL;
END
$$;

CREATE FUNCTION todos_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Watchers follow a row by id: a new id is a new row (delete + insert).
    IF NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'the id of a todo cannot change; delete it and insert a new one';
    END IF;
    -- A write that changes nothing keeps its timestamp, and the journal
    -- trigger's WHEN clause then skips it: no spurious "updated" events.
    IF (NEW.title, NEW.completed) IS DISTINCT FROM (OLD.title, OLD.completed) THEN
        NEW.updated_time := now();
    ELSE
        NEW.updated_time := OLD.updated_time;
    END IF;
    RETURN NEW;
END
$$;

CREATE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text;
    row_state todos;
    pos bigint;
BEGIN
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
    INSERT INTO todo_changes (position, op, todo_id, todo)
    VALUES (pos, change_op, row_state.id, to_jsonb(row_state));
    -- Small payload only: NOTIFY is limited to 8000 bytes, rows are not.
    PERFORM pg_notify('todo_changes',
        json_build_object('position', pos, 'op', change_op, 'id', row_state.id)::text);
    RETURN NULL;
END
$$;

CREATE FUNCTION todos_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- TRUNCATE fires no row triggers: it would empty the table behind every
    -- subscriber's back. DELETE FROM todos is journaled.
    RAISE EXCEPTION 'TRUNCATE todos is not journaled; use DELETE FROM todos';
END
$$;

CREATE TRIGGER todos_serialize BEFORE INSERT OR UPDATE OR DELETE ON todos
    FOR EACH STATEMENT EXECUTE FUNCTION todos_serialize();

CREATE TRIGGER todos_touch BEFORE UPDATE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_touch();

CREATE TRIGGER todos_journal_insert_delete AFTER INSERT OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_journal();

CREATE TRIGGER todos_journal_update AFTER UPDATE ON todos
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION todos_journal();

CREATE TRIGGER todos_no_truncate BEFORE TRUNCATE ON todos
    FOR EACH STATEMENT EXECUTE FUNCTION todos_refuse_truncate();
