-- The journal's row writers of 010, doing the same work for less again
-- (issue 21: one UPDATE of 1,000 watched rows cost the database more than
-- PostGraphile 5's two NOTIFY triggers). Same entries, positions, checks,
-- errors and payloads, to the byte; the changes (docs/bench-ab-journal.md,
-- seventh round, has the measurements):
-- * A row's payload is one concat of its parts, not json_build_object,
--   which looks up each of its 16 arguments' types in the catalog cache on
--   every call: 18k of the trigger's 163k instructions a row. The text is
--   json_build_object's: its spacing (" : " and ", "), the position as a
--   number, the uuids quoted (they need no escape), the op (no journal_op
--   needs one), the time as to_json prints it (json_build_object's own
--   encoding) and the row as jsonb prints it. One concat, not operators: a
--   plpgsql expression is set up again by every transaction, each operator
--   and cast of it (a single write pays that); concat keeps its output
--   functions for the transaction. The other entries, and the head past
--   7,900 bytes, are built as 010 built them: rare.
-- * todos_journal passes NEW (or OLD) as it is: 010 copied it into a
--   variable of type todos for each row.
--
-- In decoded mode (011) journal_write is the switch's stager, and trigger
-- mode's writer waits in journal_mode.restore for a switch back: there the
-- new writer goes to restore, in the old one's place, and the stager stays.
CREATE TEMPORARY TABLE journal_stager ON COMMIT DROP AS
    SELECT pg_get_functiondef('journal_write'::regproc) AS definition FROM journal_mode WHERE mode = 'decoded';

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
    IF p_todo IS NOT NULL AND p_detail IS NULL AND p_before_row IS NULL AND p_todo_id IS NOT NULL AND p_person IS NULL THEN
        -- A row's entry: the head and the row, as 010's json_build_object printed them.
        payload := concat('{"position" : ', pos, ', "op" : "', change_op, '", "id" : "', p_todo_id,
                          '", "changed_at" : ', to_json(committed),
                          ', "list_before" : ', CASE WHEN p_before IS NULL THEN 'null' ELSE concat('"', p_before, '"') END,
                          ', "list_after" : ', CASE WHEN p_after IS NULL THEN 'null' ELSE concat('"', p_after, '"') END,
                          ', "person" : null, "todo" : ', p_todo, '}');
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

-- restore holds the two triggers' definitions, then journal_write's, then
-- journal_expand's (core/journal_mode.py's TO_DECODED): journal_write's is
-- the first function's, up to the second's.
UPDATE journal_mode SET restore = overlay(restore PLACING pg_get_functiondef('journal_write'::regproc)
    FROM position('CREATE OR REPLACE FUNCTION' IN restore)
    FOR position(E';\nCREATE OR REPLACE FUNCTION' IN substr(restore, position('CREATE OR REPLACE FUNCTION' IN restore))) - 1)
WHERE mode = 'decoded';
DO $$
BEGIN
    EXECUTE coalesce((SELECT definition FROM journal_stager), '');
END
$$;

-- As 010, without the copy of the row.
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
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
    -- NEW or OLD named as it is: a CASE choosing between them costs a copy again.
    IF TG_OP = 'DELETE' THEN
        called := journal_write(change_op, OLD.id, to_jsonb(OLD), l_before, l_after, NULL, NULL, before_row);
    ELSE
        called := journal_write(change_op, NEW.id, to_jsonb(NEW), l_before, l_after, NULL, NULL, before_row);
    END IF;
    RETURN NULL;
END
$$;
