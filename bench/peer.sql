-- PostGraphile's side of the bench, applied after our own migrations
-- (bench/databases.py), so its todos table is ours, column for column and
-- constraint for constraint, as the app changes: the same foreign key to
-- lists (so lists and the people who own them stay) and the same BEFORE
-- UPDATE trigger keeping updated_time (todos_touch), work every write of
-- ours pays too. Everything else that is ours goes: every other function
-- (and, by CASCADE, every trigger using one: the journal, the commit-order
-- lock, the permission checks) and every other table (the journal,
-- memberships, sessions, schema_migrations), which PostGraphile would
-- otherwise expose.
DO $$
DECLARE
    f regprocedure;
    t regclass;
BEGIN
    FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE pronamespace = 'public'::regnamespace
                           AND proname <> 'todos_touch' LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', f);
    END LOOP;
    FOR t IN SELECT oid::regclass FROM pg_class
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname NOT IN ('todos', 'lists', 'people') LOOP
        EXECUTE format('DROP TABLE %s CASCADE', t);
    END LOOP;
END
$$;

-- Two row-level NOTIFY triggers, each with the change and the row (what ours
-- delivers from its own NOTIFY), so no subscriber needs a read:
-- - postgraphile:todos, every change: PostGraphile 4's simple subscription
--   `listen(topic: "todos")` (`__node__` gives its relatedNodeId), and
--   PostGraphile 5's `todoChanges` (bench/peer5.config.mjs);
-- - postgraphile:todo:<id>, the changes of one row: PostGraphile 4's
--   `listen(topic: "todo:<id>")` and PostGraphile 5's `todo(id)`.
CREATE FUNCTION todos_notify() RETURNS trigger LANGUAGE plpgsql AS $$
-- TG_ARGV[0] is the channel; a second argument appends the row's id to it.
DECLARE
    row todos := COALESCE(NEW, OLD);
BEGIN
    PERFORM pg_notify(TG_ARGV[0] || CASE WHEN TG_NARGS > 1 THEN row.id::text ELSE '' END,
        json_build_object('__node__', json_build_array('todos', row.id), 'op', TG_OP, 'todo', row)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER todos_notify AFTER INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_notify('postgraphile:todos');
CREATE TRIGGER todo_notify AFTER INSERT OR UPDATE OR DELETE ON todos
    FOR EACH ROW EXECUTE FUNCTION todos_notify('postgraphile:todo:', 'per row');
