-- Lists, sharing and a journal every reader can be shown its part of
-- (issue 19, phase 2: docs/design/people.md sections 1-3). The prototype
-- is docs/design/prototypes/005_people.sql; its accounts part is 005.
-- Fixed ids: local (005) and local's default list, which every existing
-- todo joins without a rewrite.

CREATE TABLE lists (
    id           uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id     uuid         NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    name         varchar(200) NOT NULL CHECK (btrim(name) <> ''),
    is_default   boolean      NOT NULL DEFAULT false,
    created_time timestamptz  NOT NULL DEFAULT now(),
    updated_time timestamptz  NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX lists_one_default ON lists (owner_id) WHERE is_default;

INSERT INTO lists (id, owner_id, name, is_default)
VALUES ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'Todos', true);

-- Who may see a list: its members, the owner among them (the one source of
-- visibility).
CREATE TABLE list_members (
    list_id   uuid NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    person_id uuid NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    role      text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    PRIMARY KEY (list_id, person_id)
);
CREATE INDEX list_members_person ON list_members (person_id, list_id);
CREATE UNIQUE INDEX list_members_one_owner ON list_members (list_id) WHERE role = 'owner';

INSERT INTO list_members VALUES ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'owner');

-- A constant default: existing rows get it without a rewrite and without a
-- journal entry each (PostgreSQL 11's fast default). It stays the default,
-- so psql's INSERT INTO todos (title) goes to local's default list, as before.
ALTER TABLE todos ADD COLUMN list_id uuid NOT NULL DEFAULT '00000000-0000-4000-8000-000000000002'
    REFERENCES lists (id);
CREATE INDEX todos_list_order ON todos (list_id, created_time, id);

-- The journal. Old entries read as the default list's (fast default again).
ALTER TABLE todo_changes
    ALTER COLUMN todo_id DROP NOT NULL,
    ALTER COLUMN todo DROP NOT NULL,
    DROP CONSTRAINT todo_changes_op_check,
    ADD CONSTRAINT todo_changes_op_check CHECK (op IN (
        'created', 'updated', 'deleted',              -- a todo row changed
        'arrived', 'removed',                         -- one reader gains or loses a row (person_id)
        'list_created', 'list_updated', 'list_deleted',
        'member_added', 'member_updated', 'member_removed',
        'access_revoked'                              -- a session or token ended: for servers only
    )),
    ADD COLUMN list_before uuid DEFAULT '00000000-0000-4000-8000-000000000002',
    ADD COLUMN list_after  uuid DEFAULT '00000000-0000-4000-8000-000000000002',
    -- member_*: the member; arrived/removed: the reader; access_revoked: whose.
    ADD COLUMN person_id   uuid,
    -- list_*: the list row; member_*: {role_before, role_after, username,
    -- reason}; access_revoked: {session} or {token}.
    ADD COLUMN detail      jsonb,
    -- updated with list_before <> list_after: the row before (what readers
    -- of the old list last could see); removed: the row as it stands.
    ADD COLUMN before      jsonb;
-- Only the old entries read as the default list's: a new entry names its
-- lists (NULL on the side a created or deleted row has none).
ALTER TABLE todo_changes ALTER COLUMN list_before DROP DEFAULT, ALTER COLUMN list_after DROP DEFAULT;

-- A reader's lists at a cursor read the membership entries after it.
CREATE INDEX todo_changes_membership ON todo_changes (person_id, position)
    WHERE op IN ('member_added', 'member_removed');

-- One journal writer for every kind of entry: position in commit order under
-- the lock (the caller holds it), row, NOTIFY (the rest of the entry when it
-- fits; the listener reads a bigger one back). As 006: the entry carries the
-- key of the numbered mutation that made it, and a session that asks
-- (app.cursor_notice = on) is told its position by a NOTICE at commit.
CREATE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint := nextval('todo_changes_position');
    committed timestamptz;
    payload text;
    head jsonb;
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
    PERFORM pg_notify('todo_changes', payload);
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN pos;
END
$$;

-- A transaction may change a list's members or its todos, not both (the
-- service never does; psql is told): arrivals and removals are read at
-- commit, and would otherwise carry the same transaction's new values.
CREATE FUNCTION journal_mark_list(kind text, p_list uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    other text := CASE kind WHEN 'todos' THEN 'members' ELSE 'todos' END;
BEGIN
    IF p_list IS NULL THEN
        RETURN;
    END IF;
    IF position(p_list::text IN coalesce(current_setting('app.journal_' || other, true), '')) > 0 THEN
        RAISE EXCEPTION 'change the members of list % and its todos in separate transactions', p_list
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF position(p_list::text IN coalesce(current_setting('app.journal_' || kind, true), '')) = 0 THEN
        PERFORM set_config('app.journal_' || kind,
                           coalesce(current_setting('app.journal_' || kind, true), '') || p_list::text, true);
    END IF;
END
$$;

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
    -- (FORBIDDEN) instead of landing after the removal.
    IF actor IS NOT NULL AND (
        (l_before IS NOT NULL AND l_before IS DISTINCT FROM l_after
         AND current_setting('app.list_deleting', true) IS DISTINCT FROM l_before::text
         AND NOT EXISTS (SELECT FROM list_members
                         WHERE list_id = l_before AND person_id = actor AND role <> 'viewer'))
        OR (l_after IS NOT NULL
            AND NOT EXISTS (SELECT FROM list_members
                            WHERE list_id = l_after AND person_id = actor AND role <> 'viewer'))
    ) THEN
        RAISE EXCEPTION 'may no longer edit this list' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM journal_mark_list('todos', l_before);
    PERFORM journal_mark_list('todos', l_after);
    PERFORM journal_write(change_op, row_state.id, to_jsonb(row_state), l_before, l_after, NULL, NULL, before_row);
    RETURN NULL;
END
$$;

-- Deleting a list deletes its todos, then its members, before the list
-- itself (a BEFORE trigger, so their journal entries come first, in that
-- order): the deletes reach the members, each member then gets its
-- member_removed ("list_deleted" as the reason, no removals: the rows are
-- gone), and a reader resumed from any cursor agrees (people.md section 2).
CREATE FUNCTION lists_delete_contents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.list_deleting', OLD.id::text, true);
    DELETE FROM todos WHERE list_id = OLD.id;
    DELETE FROM list_members WHERE list_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE FUNCTION lists_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_state lists := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    PERFORM journal_write(
        CASE TG_OP WHEN 'INSERT' THEN 'list_created' WHEN 'UPDATE' THEN 'list_updated' ELSE 'list_deleted' END,
        NULL, NULL, row_state.id, row_state.id, NULL, to_jsonb(row_state), NULL);
    RETURN NULL;
END
$$;

-- A reader's arrivals (the rows) or removals (the ids, and in `before` the
-- row as it stands, for the legacy todoChanges shape): one entry per row of
-- the list in list order, written in one statement, and one notification
-- naming the range (the listener reads it back).
CREATE FUNCTION journal_expand(change_op text, p_list uuid, p_person uuid) RETURNS void LANGUAGE plpgsql AS $$
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
        RETURNING position
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

-- Members: the entry, and the reader's arrivals (after it) or removals
-- (before it): the list's rows as they stand at this position, read under
-- the lock, so exactly the rows the reader may now see or no longer sees.
CREATE FUNCTION members_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m list_members := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    list_alive boolean;
    who text;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    SELECT username INTO who FROM people WHERE id = m.person_id;
    list_alive := EXISTS (SELECT FROM lists WHERE id = m.list_id);
    IF TG_OP = 'UPDATE' THEN
        IF OLD.role IS DISTINCT FROM NEW.role THEN
            PERFORM journal_write('member_updated', NULL, NULL, m.list_id, m.list_id, m.person_id,
                jsonb_build_object('role_before', OLD.role, 'role_after', NEW.role, 'username', who), NULL);
        END IF;
        RETURN NULL;
    END IF;
    IF list_alive THEN
        PERFORM journal_mark_list('members', m.list_id);
    END IF;
    IF TG_OP = 'DELETE' AND list_alive THEN
        PERFORM journal_expand('removed', m.list_id, m.person_id);
    END IF;
    PERFORM journal_write(CASE TG_OP WHEN 'INSERT' THEN 'member_added' ELSE 'member_removed' END,
        NULL, NULL, m.list_id, m.list_id, m.person_id,
        jsonb_build_object('role_before', CASE WHEN TG_OP = 'DELETE' THEN OLD.role END,
                           'role_after', CASE WHEN TG_OP = 'INSERT' THEN NEW.role END, 'username', who,
                           'reason', CASE WHEN NOT list_alive THEN 'list_deleted' END), NULL);
    IF TG_OP = 'INSERT' THEN
        PERFORM journal_expand('arrived', m.list_id, m.person_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER lists_delete_contents BEFORE DELETE ON lists
    FOR EACH ROW EXECUTE FUNCTION lists_delete_contents();
CREATE CONSTRAINT TRIGGER lists_journal AFTER INSERT OR UPDATE OR DELETE ON lists
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lists_journal();
CREATE CONSTRAINT TRIGGER list_members_journal AFTER INSERT OR UPDATE OR DELETE ON list_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION members_journal();
CREATE TRIGGER lists_no_truncate BEFORE TRUNCATE ON lists
    FOR EACH STATEMENT EXECUTE FUNCTION todos_refuse_truncate();
CREATE TRIGGER list_members_no_truncate BEFORE TRUNCATE ON list_members
    FOR EACH STATEMENT EXECUTE FUNCTION todos_refuse_truncate();

-- Every person has a default list, made with them (sign-up, a JWT's new
-- person, psql): createTodo without a list needs one.
CREATE FUNCTION people_default_list() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    made uuid;
BEGIN
    INSERT INTO lists (owner_id, name, is_default) VALUES (NEW.id, 'Todos', true) RETURNING id INTO made;
    INSERT INTO list_members (list_id, person_id, role) VALUES (made, NEW.id, 'owner');
    RETURN NULL;
END
$$;
CREATE TRIGGER people_default_list AFTER INSERT ON people
    FOR EACH ROW EXECUTE FUNCTION people_default_list();

-- A session or token that ends (signed out, revoked, password changed,
-- person deleted) is a journal entry: every process closes what it holds
-- open for it, in commit order with everything else.
CREATE FUNCTION access_journal() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    PERFORM journal_write('access_revoked', NULL, NULL, NULL, NULL, OLD.person_id,
        jsonb_build_object(CASE TG_TABLE_NAME WHEN 'sessions' THEN 'session' ELSE 'token' END, OLD.id), NULL);
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER sessions_journal AFTER DELETE ON sessions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION access_journal();
CREATE CONSTRAINT TRIGGER access_tokens_journal AFTER DELETE ON access_tokens
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION access_journal();
