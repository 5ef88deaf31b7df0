-- The todos journal trigger of 007, doing the same work for less (issue 21:
-- the trigger was over half of PostgreSQL's CPU per createTodo). Same
-- entries, same checks, same errors; the changes:
-- * The writer's right is checked by one plain query per list, only for
--   an actor. 007 checked it in one IF whose condition held two EXISTS
--   subqueries: not a simple expression, so plpgsql started the executor
--   for the whole of it on every row, the service's (no actor) too: 50 to
--   70 µs of PostgreSQL's 390 to 410 per createTodo (one connection,
--   statements in a row, the backend's CPU time).
-- * journal_mark_list only where it has work: a created or deleted row has
--   one list, a row updated in place one (007 called it for both sides,
--   NULL or equal).
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text;
    row_state todos;
    l_before uuid;
    l_after uuid;
    -- The person the statement acts for (set_config('app.person_id', ...,
    -- true) in the same statement); NULL for psql and the service token:
    -- no check. Read here, not through a SQL function: a plpgsql query's
    -- plan is cached (people.md section 5).
    actor uuid := nullif(current_setting('app.person_id', true), '')::uuid;
    before_row jsonb;
BEGIN
    -- Deferred to commit time; the lock makes positions follow commit order
    -- (002_journal_at_commit.sql). Every statement below takes its snapshot
    -- after it: membership as of this position.
    PERFORM pg_advisory_xact_lock(7305202417);
    IF TG_OP = 'INSERT' THEN
        change_op := 'created'; row_state := NEW; l_after := NEW.list_id;
    ELSIF TG_OP = 'UPDATE' THEN
        change_op := 'updated'; row_state := NEW; l_before := OLD.list_id; l_after := NEW.list_id;
        IF l_before <> l_after THEN
            before_row := to_jsonb(OLD);
        END IF;
    ELSE
        change_op := 'deleted'; row_state := OLD; l_before := OLD.list_id;
    END IF;
    -- The writer's right, judged again at its commit position: a member
    -- removed by a transaction that committed first makes this one fail
    -- (FORBIDDEN) instead of landing after the removal. The list a row
    -- leaves (unless that list is being deleted), and the list it is in.
    IF actor IS NOT NULL THEN
        IF l_before IS NOT NULL AND l_before IS DISTINCT FROM l_after
           AND current_setting('app.list_deleting', true) IS DISTINCT FROM l_before::text THEN
            PERFORM FROM list_members WHERE list_id = l_before AND person_id = actor AND role <> 'viewer';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'may no longer edit this list' USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
        IF l_after IS NOT NULL THEN
            PERFORM FROM list_members WHERE list_id = l_after AND person_id = actor AND role <> 'viewer';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'may no longer edit this list' USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
    END IF;
    IF l_before IS NOT NULL THEN
        PERFORM journal_mark_list('todos', l_before);
    END IF;
    IF l_after IS NOT NULL AND l_after IS DISTINCT FROM l_before THEN
        PERFORM journal_mark_list('todos', l_after);
    END IF;
    PERFORM journal_write(change_op, row_state.id, to_jsonb(row_state), l_before, l_after, NULL, NULL, before_row);
    RETURN NULL;
END
$$;
