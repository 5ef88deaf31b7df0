-- The journal's two partial indexes moved off todo_changes (issue 21: one
-- UPDATE of 1,000 watched rows, the database's part). Every entry's INSERT
-- opened todo_changes_membership (007) and todo_changes_mutation (006),
-- built their IndexInfo and prepared their predicates again (a row
-- trigger's INSERT is an executor of its own), though a row's entry goes in
-- neither: 13k instructions a row (docs/bench-ab-journal.md, ninth round).
-- Their entries are now found in two small tables of their own, written
-- with the entry by its writer, and only for entries that belong there:
-- * todo_changes_members: each member_added and member_removed entry
--   (journal_write, for members_journal), for a reader's lists at a cursor
--   (core/repository.py).
-- * todo_changes_keyed: each entry a numbered mutation made (todos_journal,
--   journal_write and journal_expand, when app.mutation is set), for its
--   verdict (core/verdicts.py).
-- In decoded mode the sequencer's statement writes them (core/pgoutput.py).
-- An entry deleted (retention, or by hand) takes its rows with it.
-- Same entries, positions, payloads, checks and errors as 014; journal_write
-- loses its row case, which no trigger reaches since 014.

CREATE TABLE todo_changes_members (
    person_id uuid       NOT NULL,
    position  bigint     NOT NULL,
    list_id   uuid       NOT NULL,
    op        journal_op NOT NULL,
    PRIMARY KEY (person_id, position)
);
INSERT INTO todo_changes_members (person_id, position, list_id, op)
SELECT person_id, position, list_after, op FROM todo_changes WHERE op IN ('member_added', 'member_removed');

CREATE TABLE todo_changes_keyed (
    mutation text   NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (mutation, position)
);
INSERT INTO todo_changes_keyed (mutation, position)
SELECT mutation, position FROM todo_changes WHERE mutation IS NOT NULL;

DROP INDEX todo_changes_membership;
DROP INDEX todo_changes_mutation;

-- Once per DELETE statement (retention deletes a batch at a time), not per
-- entry written: a statement trigger with the deleted entries.
CREATE FUNCTION todo_changes_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM todo_changes_members m USING gone g
    WHERE m.person_id = g.person_id AND m.position = g.position AND g.op IN ('member_added', 'member_removed');
    DELETE FROM todo_changes_keyed k USING gone g WHERE k.mutation = g.mutation AND k.position = g.position;
    RETURN NULL;
END
$$;
CREATE TRIGGER todo_changes_forget AFTER DELETE ON todo_changes
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION todo_changes_forget();

-- In decoded mode (011) journal_write and journal_expand are the switch's
-- stagers, and trigger mode's wait in journal_mode.restore for a switch
-- back: there the new ones go to restore, and the stagers stay (as 012).
CREATE TEMPORARY TABLE journal_stagers ON COMMIT DROP AS
    SELECT pg_get_functiondef(f::regproc) AS definition
    FROM journal_mode, unnest(ARRAY['journal_write', 'journal_expand']) f WHERE mode = 'decoded';

-- As 012, and: the entry's rows of the side tables; no row case (a row's
-- entry is todos_journal's since 014; a move's has its row before).
CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    key text := nullif(current_setting('app.mutation', true), '');
    pos bigint;
    committed timestamptz;
    payload text;
    called text;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (nextval('todo_changes_position'), change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail,
            p_before_row, key)
    RETURNING position, changed_at INTO pos, committed;
    IF change_op IN ('member_added', 'member_removed') THEN
        INSERT INTO todo_changes_members (person_id, position, list_id, op) VALUES (p_person, pos, p_after, change_op);
    END IF;
    IF key IS NOT NULL THEN
        INSERT INTO todo_changes_keyed (mutation, position) VALUES (key, pos);
    END IF;
    payload := (jsonb_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                   'list_before', p_before, 'list_after', p_after, 'person', p_person)
                || jsonb_strip_nulls(jsonb_build_object('todo', p_todo, 'detail', p_detail,
                                                        'before', p_before_row)))::text;
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

-- As 007, and: a numbered mutation's entries in todo_changes_keyed.
CREATE OR REPLACE FUNCTION journal_expand(change_op text, p_list uuid, p_person uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    first_pos bigint;
    last_pos bigint;
BEGIN
    WITH written AS (
        INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, before, mutation)
        SELECT nextval('todo_changes_position'), change_op, t.id,
               CASE WHEN change_op = 'arrived' THEN to_jsonb(t) END,
               CASE WHEN change_op = 'removed' THEN p_list END,
               CASE WHEN change_op = 'arrived' THEN p_list END,
               p_person,
               CASE WHEN change_op = 'removed' THEN to_jsonb(t) END,
               nullif(current_setting('app.mutation', true), '')
        FROM (SELECT * FROM todos WHERE list_id = p_list ORDER BY created_time, id) t
        RETURNING position, mutation
    ), keyed AS (
        INSERT INTO todo_changes_keyed (mutation, position) SELECT mutation, position FROM written WHERE mutation IS NOT NULL
    )
    SELECT min(position), max(position) INTO first_pos, last_pos FROM written;
    IF first_pos IS NOT NULL THEN
        PERFORM pg_notify('todo_changes', json_build_object(
            'position', first_pos, 'through', last_pos, 'op', change_op, 'person', p_person)::text);
        IF current_setting('app.cursor_notice', true) = 'on' THEN
            RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || last_pos, ERRCODE = '01GT0';
        END IF;
    END IF;
END
$$;

-- restore holds the two triggers' definitions, then journal_write's, then
-- journal_expand's (core/journal_mode.py's TO_DECODED): the triggers' are
-- kept, the functions' are the new ones.
UPDATE journal_mode SET restore = substr(restore, 1, position('CREATE OR REPLACE FUNCTION' IN restore) - 1)
    || pg_get_functiondef('journal_write'::regproc) || E';\n' || pg_get_functiondef('journal_expand'::regproc)
WHERE mode = 'decoded';
DO $$
DECLARE
    stager text;
BEGIN
    FOR stager IN SELECT definition FROM journal_stagers LOOP
        EXECUTE stager;
    END LOOP;
END
$$;

-- As 014, and: a numbered mutation's entry in todo_changes_keyed.
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op journal_op := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    l_before uuid := CASE WHEN TG_OP <> 'INSERT' THEN OLD.list_id END;
    l_after uuid := CASE WHEN TG_OP <> 'DELETE' THEN NEW.list_id END;
    -- Whom the statement acts for; NULL (psql, the service token): no check (007).
    actor uuid := nullif(current_setting('app.person_id', true), '')::uuid;
    -- The lists this transaction has marked for todos so far (journal_mark_list).
    marked text := coalesce(current_setting('app.journal_todos', true), '');
    key text := nullif(current_setting('app.mutation', true), '');
    called text;
    row_id uuid;
    todo jsonb;
    pos bigint;
    committed timestamptz;
    payload text;
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
    -- A row moved to another list: as it was, for the readers of the one it left.
    IF l_before <> l_after THEN
        called := journal_write(change_op, NEW.id, to_jsonb(NEW), l_before, l_after, NULL, NULL, to_jsonb(OLD));
        RETURN NULL;
    END IF;
    -- NEW or OLD named as it is: a CASE choosing between them costs a copy (012).
    IF TG_OP = 'DELETE' THEN
        row_id := OLD.id;
        todo := to_jsonb(OLD);
    ELSE
        row_id := NEW.id;
        todo := to_jsonb(NEW);
    END IF;
    pos := nextval('todo_changes_position');
    committed := clock_timestamp();
    INSERT INTO todo_changes (position, op, todo_id, todo, changed_at, list_before, list_after, mutation)
    VALUES (pos, change_op, row_id, todo, committed, l_before, l_after, key);
    IF key IS NOT NULL THEN
        INSERT INTO todo_changes_keyed (mutation, position) VALUES (key, pos);
    END IF;
    -- The entry as 010's json_build_object printed it (012).
    payload := concat('{"position" : ', pos, ', "op" : "', change_op, '", "id" : "', row_id,
                      '", "changed_at" : ', to_json(committed),
                      ', "list_before" : ', CASE WHEN l_before IS NULL THEN 'null' ELSE concat('"', l_before, '"') END,
                      ', "list_after" : ', CASE WHEN l_after IS NULL THEN 'null' ELSE concat('"', l_after, '"') END,
                      ', "person" : null, "todo" : ', todo, '}');
    -- NOTIFY payloads stop short of 8000 bytes; past that the head alone
    -- goes, and the listener reads the entry back.
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', row_id, 'changed_at', committed,
                                     'list_before', l_before, 'list_after', l_after, 'person', NULL::uuid)::text;
    END IF;
    called := pg_notify('todo_changes', payload);
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN NULL;
END
$$;
