-- PostGraphile's side of the bench: the same todos table and index as
-- sql/001_todos.sql, without the journal, and the NOTIFY trigger its simple
-- subscriptions read (`listen(topic: "todos")`: channel postgraphile:todos,
-- `__node__` gives relatedNodeId without a read per subscriber).
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

CREATE FUNCTION todos_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_state todos := COALESCE(NEW, OLD);
BEGIN
    PERFORM pg_notify('postgraphile:todos',
        json_build_object('__node__', json_build_array('todos', row_state.id))::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER todos_notify AFTER INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_notify();
