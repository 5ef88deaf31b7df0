-- A person deleted by hand (psql's DELETE FROM people) costs each of their
-- rows the same, however many people the statement deletes (the review's
-- 20,000 took 188 s: every row's work grew with the rows deleted before it).
-- Same entries, order, checks, errors and locks; the two causes:
--
-- * The list marks (007: a transaction may not change a list's members and
--   its todos) are one setting per kind holding every list marked so far.
--   Each todo row copies and searches it (todos_journal in trigger mode,
--   todos_mark in decoded mode) and each new mark copies it twice more:
--   work in the lists marked, per row. The cascade marked every list it
--   deleted for todos, though a list that is gone at commit is never marked
--   for members (members_journal marks a live list only), so its todos mark
--   could never meet one. Such a list is marked no more: the one whose
--   contents lists_delete_contents (007) is deleting now (decoded mode marks
--   there, app.list_deleting), or one gone when trigger mode marks at commit
--   (looked up only in a transaction that deleted a list). The marks hold
--   the lists that stay, as a transaction of the app's has them.
-- * The username kept for the member entries (023) was a setting per
--   person. Before PostgreSQL 16 each new setting name sorts every setting
--   of the session again (2.2 s for 5,000 names on PostgreSQL 15, 76 s for
--   20,000), and every name stays for the session's life. It is kept in a
--   temporary table made by the deleting transaction, dropped at its commit
--   (after the member entries, which the deferred triggers write before any
--   ON COMMIT action), found by its key: a person's deletion is psql's, never
--   the app's, so no request pays for the table. Rows inserted under a
--   savepoint rolled back go with it, as the setting did. Such a
--   transaction cannot be PREPAREd (a temporary table), and its role needs
--   the database's TEMPORARY privilege (PUBLIC's unless revoked).
-- tests/test_peopledel_growth.py bounds the backend's CPU time from n to 4n
-- people. Still in the lists marked: the lists that stay, marked for
-- members, one each (n people each a member of a list of their own).

CREATE OR REPLACE FUNCTION journal_mark_list(kind text, p_list uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    other text := CASE kind WHEN 'todos' THEN 'members' ELSE 'todos' END;
    deleting text := current_setting('app.list_deleting', true);
    called text;
BEGIN
    IF p_list IS NULL THEN
        RETURN;
    END IF;
    -- A list this transaction deletes (above): no mark. A plain IF, its
    -- query run only after some list's deletion.
    IF kind = 'todos' AND deleting <> '' THEN
        IF deleting = p_list::text THEN
            RETURN;
        END IF;
        PERFORM FROM lists WHERE id = p_list;
        IF NOT FOUND THEN
            RETURN;
        END IF;
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

CREATE OR REPLACE FUNCTION people_keep_username() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.people_deleted_names') IS NULL THEN
        CREATE TEMPORARY TABLE people_deleted_names (id uuid PRIMARY KEY, username text NOT NULL) ON COMMIT DROP;
    END IF;
    -- The same id deleted again in one transaction (inserted again by hand between): its last name.
    INSERT INTO pg_temp.people_deleted_names VALUES (OLD.id, OLD.username)
    ON CONFLICT (id) DO UPDATE SET username = excluded.username;
    RETURN OLD;
END
$$;

-- The name of a member whose person this transaction deleted (NULL else).
CREATE FUNCTION people_deleted_name(person uuid) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.people_deleted_names') IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN (SELECT username FROM pg_temp.people_deleted_names WHERE id = person);
END
$$;

-- As 023, the name found by people_deleted_name.
CREATE OR REPLACE FUNCTION members_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m list_members := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    list_alive boolean;
    who text;
    detail jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    who := coalesce((SELECT username FROM people WHERE id = m.person_id), people_deleted_name(m.person_id));
    list_alive := EXISTS (SELECT FROM lists WHERE id = m.list_id);
    IF TG_OP = 'UPDATE' THEN
        IF OLD.role IS DISTINCT FROM NEW.role THEN
            detail := jsonb_build_object('role_before', OLD.role, 'role_after', NEW.role, 'username', who);
            PERFORM journal_write('member_updated', NULL, NULL, m.list_id, m.list_id, m.person_id, detail, NULL);
        END IF;
        RETURN NULL;
    END IF;
    IF list_alive THEN
        PERFORM journal_mark_list('members', m.list_id);
        IF TG_OP = 'DELETE' THEN
            PERFORM journal_expand('removed', m.list_id, m.person_id);
        END IF;
    END IF;
    detail := jsonb_build_object(
        'role_before', CASE WHEN TG_OP = 'DELETE' THEN OLD.role END,
        'role_after', CASE WHEN TG_OP = 'INSERT' THEN NEW.role END,
        'username', who, 'reason', CASE WHEN NOT list_alive THEN 'list_deleted' END);
    PERFORM journal_write(CASE TG_OP WHEN 'INSERT' THEN 'member_added' ELSE 'member_removed' END,
                          NULL, NULL, m.list_id, m.list_id, m.person_id, detail, NULL);
    -- An arrival's rows after its entry, a removal's before (007).
    IF TG_OP = 'INSERT' THEN PERFORM journal_expand('arrived', m.list_id, m.person_id); END IF;
    RETURN NULL;
END
$$;
