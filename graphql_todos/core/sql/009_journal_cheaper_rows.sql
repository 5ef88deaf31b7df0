-- The journal's row writers, doing the same work for less (issue 21: one
-- UPDATE of 1,000 rows cost PostgreSQL about twice what the peers' two NOTIFY
-- triggers do). Same entries, positions, payloads, checks and errors; the
-- changes (docs/bench-ab-journal.md has the measurements):
-- * todo_changes.op is checked by a domain, not by a table CHECK. A table's
--   CHECK is read back from its stored text and planned again by every
--   INSERT statement, and every journal entry of a row is one INSERT of its
--   own (a row trigger's): a fifth of the trigger's CPU. A domain's check is
--   planned once per session (the type cache). The column is changed to the
--   domain before the domain gets its check, so no row is rewritten: the
--   check reads the journal once, and the membership index (its predicate
--   names op) is built again, of the member entries alone.
-- * The commit-order lock, pg_notify and journal_write are called in an
--   assignment, not by PERFORM: plpgsql evaluates a plain function call in
--   an expression without starting the executor; a PERFORM runs a query.
--   The lock is the same lock, taken at the same point: held already, it is
--   only counted again.
-- * journal_mark_list only for a list this transaction has not marked yet
--   (every row after the first in its list has nothing to do there): once a
--   list is marked for todos, marking it for members raises, so no conflict
--   can appear that a skipped call would have caught.

CREATE DOMAIN journal_op AS text;
ALTER TABLE todo_changes DROP CONSTRAINT todo_changes_op_check, ALTER COLUMN op TYPE journal_op;
ALTER DOMAIN journal_op ADD CONSTRAINT journal_op_check CHECK (VALUE IN (
    'created', 'updated', 'deleted',              -- a todo row changed
    'arrived', 'removed',                         -- one reader gains or loses a row (person_id)
    'list_created', 'list_updated', 'list_deleted',
    'member_added', 'member_updated', 'member_removed',
    'access_revoked'                              -- a session or token ended: for servers only
));

-- As 007, with pg_notify in an assignment. `called` takes what a void
-- function returns (an empty string): plpgsql has no void variable.
CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint := nextval('todo_changes_position');
    committed timestamptz;
    payload text;
    head jsonb;
    called text;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (pos, change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail, p_before_row,
            nullif(current_setting('app.mutation', true), ''))
    RETURNING changed_at INTO committed;
    head := jsonb_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                               'list_before', p_before, 'list_after', p_after, 'person', p_person);
    payload := (head || jsonb_strip_nulls(jsonb_build_object('todo', p_todo, 'detail', p_detail,
                                                             'before', p_before_row)))::text;
    IF octet_length(payload) >= 7900 THEN
        payload := head::text;
    END IF;
    called := pg_notify('todo_changes', payload);
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN pos;
END
$$;

-- As 008, with the changes above.
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
        PERFORM journal_mark_list('todos', l_before);
    END IF;
    IF l_after IS NOT NULL AND l_after IS DISTINCT FROM l_before AND position(l_after::text IN marked) = 0 THEN
        PERFORM journal_mark_list('todos', l_after);
    END IF;
    called := journal_write(change_op, row_state.id, to_jsonb(row_state), l_before, l_after, NULL, NULL, before_row);
    RETURN NULL;
END
$$;
