-- PostGraphile's side of the bench, applied after our own migrations
-- (bench/databases.py), so its todos table is ours, column for column, as
-- the app changes. Everything else that is ours goes: every function (and,
-- by CASCADE, every trigger using one: the journal, the commit-order lock)
-- and every other table (the journal, schema_migrations), which PostGraphile
-- would otherwise expose.
DO $$
DECLARE
    f regprocedure;
    t regclass;
BEGIN
    FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'public'::regnamespace LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);
    END LOOP;
    FOR t IN SELECT oid::regclass FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'todos' LOOP
        EXECUTE format('DROP TABLE %s CASCADE', t);
    END LOOP;
END
$$;

-- The NOTIFY its simple subscriptions read (`listen(topic: "todos")`:
-- channel postgraphile:todos; `__node__` gives relatedNodeId without a read
-- per subscriber).
CREATE FUNCTION todos_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postgraphile:todos',
        json_build_object('__node__', json_build_array('todos', COALESCE(NEW.id, OLD.id)))::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER todos_notify AFTER INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_notify();
