-- The journal's writers of 009, doing the same work for less again (issue
-- 21: a createTodo cost PostgreSQL about twice the peers' INSERT, the
-- journal trigger over half of it). Same entries, positions, checks, errors
-- and notifications (what a listener parses out of them is the same; the
-- bytes differ); the changes (docs/bench-ab-journal.md has the measurements):
-- * A row's notification (created, updated in place, deleted: the entries
--   of every todo write but a move) is built as json text, not as jsonb
--   (two jsonb objects built, one stripped of nulls, concatenated, then
--   printed): a sixth of the trigger's work per createTodo. It holds the
--   same keys and values, nulls of the head included; only the order of
--   its keys and the spacing differ, which no reader depends on (the hub
--   parses it with orjson). Other entries (a move, a list's, a member's, an
--   access entry) are built as before: rare, and their detail's nulls are
--   left out (jsonb_strip_nulls), which a json build would not do.
-- * journal_write takes its position in the INSERT itself (RETURNING), one
--   expression fewer to set up per transaction: plpgsql sets up each
--   expression once per transaction, and each write is a transaction.
-- * journal_mark_list is called in an assignment, and calls set_config in
--   one, not by PERFORM (which runs a query: executor start and end), as 009
--   did for the lock and pg_notify.

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
    IF p_todo IS NOT NULL AND p_detail IS NULL AND p_before_row IS NULL THEN
        -- A row's entry: the head and the row (no nulls in a todo row to strip).
        payload := json_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                     'list_before', p_before, 'list_after', p_after, 'person', p_person,
                                     'todo', p_todo)::text;
    ELSE
        payload := (jsonb_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                       'list_before', p_before, 'list_after', p_after, 'person', p_person)
                    || jsonb_strip_nulls(jsonb_build_object('todo', p_todo, 'detail', p_detail,
                                                            'before', p_before_row)))::text;
    END IF;
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

-- As 007, set_config in an assignment. `called` takes what a void function
-- returns (009).
CREATE OR REPLACE FUNCTION journal_mark_list(kind text, p_list uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    other text := CASE kind WHEN 'todos' THEN 'members' ELSE 'todos' END;
    called text;
BEGIN
    IF p_list IS NULL THEN
        RETURN;
    END IF;
    IF position(p_list::text IN coalesce(current_setting('app.journal_' || other, true), '')) > 0 THEN
        RAISE EXCEPTION 'change the members of list % and its todos in separate transactions', p_list
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF position(p_list::text IN coalesce(current_setting('app.journal_' || kind, true), '')) = 0 THEN
        called := set_config('app.journal_' || kind,
                             coalesce(current_setting('app.journal_' || kind, true), '') || p_list::text, true);
    END IF;
END
$$;

-- As 009, journal_mark_list in an assignment.
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
    -- The lists this transaction has marked for todos so far (journal_mark_list).
    marked text := coalesce(current_setting('app.journal_todos', true), '');
    called text;
BEGIN
    -- At commit, under the commit-order lock (002): membership as of this position.
    called := pg_advisory_xact_lock(7305202417);
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
    IF l_before IS NOT NULL AND position(l_before::text IN marked) = 0 THEN
        called := journal_mark_list('todos', l_before);
    END IF;
    IF l_after IS NOT NULL AND l_after IS DISTINCT FROM l_before AND position(l_after::text IN marked) = 0 THEN
        called := journal_mark_list('todos', l_after);
    END IF;
    called := journal_write(change_op, row_state.id, to_jsonb(row_state), l_before, l_after, NULL, NULL, before_row);
    RETURN NULL;
END
$$;
