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
    change_op text := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    row_state todos := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    l_before uuid := CASE WHEN TG_OP <> 'INSERT' THEN OLD.list_id END;
    l_after uuid := CASE WHEN TG_OP <> 'DELETE' THEN NEW.list_id END;
    -- A row moved to another list: as it was, for the readers of the one it left.
    before_row jsonb := CASE WHEN l_before <> l_after THEN to_jsonb(OLD) END;
    -- Whom the statement acts for; NULL (psql, the service token): no check (007).
    actor uuid := nullif(current_setting('app.person_id', true), '')::uuid;
BEGIN
    -- At commit, under the commit-order lock (002): membership as of this position.
    PERFORM pg_advisory_xact_lock(7305202417);
    -- The writer's right, judged again at its commit position (007): on the
    -- list a row leaves (unless that list is being deleted) and the one it is in.
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
