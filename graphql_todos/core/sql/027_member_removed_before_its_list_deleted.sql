-- A member removed by hand and their list then deleted in one transaction
-- (psql: DELETE FROM list_members WHERE list_id = L AND person_id = P; DELETE
-- FROM lists WHERE id = L; the app never does both) get their member_removed
-- after the list's todos' deletions, as a member the deletion removes does
-- (007, people.md section 2). Trigger mode journals at commit, in the order
-- the rows changed: the member's entry, queued first, was written first,
-- with the list gone ("list_deleted", no removals: 007 counts on the todos'
-- deletions coming first), and the member no longer saw those deletions:
-- their streams kept the list's rows for ever. A member shared by hand and
-- the list then deleted had the mirror of it: their member_added (no
-- arrivals, the list gone) came first, and they were then sent deletions of
-- rows they never had. Decoded mode journals the deletions at their
-- statement, before the member entries of the commit.
--
-- A member row's deletion is now told at its statement from one made by
-- lists_delete_contents while it empties that list (app.list_emptying, 025):
-- two constraint triggers of DELETE with opposite WHEN conditions, which a
-- constraint trigger evaluates when the row is deleted, not at commit. At
-- commit, a share, or a removal not the emptying's, whose list is gone waits
-- for the list's list_deleted: lists_journal writes it first, after every
-- entry of the list's emptying (its todos', then its members'), in the order
-- they were queued; a later entry of the same member of that list (a role
-- changed, the emptying's removal of a member shared) waits behind it. They
-- wait in a setting of the transaction (app.members_pending: list, person,
-- operation and roles, about 90 bytes each), which only such entries enter:
-- a list's own emptying (nothing waiting) and the app's writes (their list
-- alive at commit) pass by it with one look, so a person's deletion by hand
-- costs what it cost (tests/test_peopledel_growth.py), and no todo trigger
-- changes. An entry whose list's list_deleted came before it (the list
-- deleted inside the member's statement, by a function in its WHERE or
-- RETURNING: the emptying's entries then come first too) is written at once:
-- lists_journal keeps the last 8 lists it journaled deleted
-- (app.list_journaled); one whose function deleted 8 more lists after it is
-- never written. Decoded mode runs the same triggers at commit: its
-- member entries of a list deleted keep the same order among themselves.
-- tests/test_review25_deletions.py, tests/test_gap_member_then_list.py.

CREATE OR REPLACE FUNCTION members_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m list_members := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    list_alive boolean;
    waits boolean;
    who text;
    detail jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    list_alive := EXISTS (SELECT FROM lists WHERE id = m.list_id);
    IF TG_OP = 'UPDATE' AND OLD.role IS NOT DISTINCT FROM NEW.role THEN
        RETURN NULL;
    END IF;
    -- Its list deleted after it in this transaction (above): a share or a
    -- removal waits for lists_journal, and so does any later entry of the
    -- same member of that list (a role changed, the emptying's removal), so
    -- that each person's entries keep their order.
    IF NOT list_alive THEN
        IF TG_OP = 'INSERT' OR TG_NAME = 'list_members_journal_removed' THEN
            waits := position(m.list_id::text IN coalesce(current_setting('app.list_journaled', true), '')) = 0;
        ELSE
            waits := position(concat(m.list_id, ' ', m.person_id, ' ') IN coalesce(current_setting('app.members_pending', true), '')) > 0;
        END IF;
        IF waits THEN
            PERFORM set_config('app.members_pending', concat(current_setting('app.members_pending', true),
                m.list_id, ' ', m.person_id, ' ', TG_OP, ' ', CASE WHEN TG_OP <> 'INSERT' THEN OLD.role END,
                ' ', CASE WHEN TG_OP <> 'DELETE' THEN NEW.role END, ';'), true);
            RETURN NULL;
        END IF;
    END IF;
    who := coalesce((SELECT username FROM people WHERE id = m.person_id), people_deleted_name(m.person_id));
    IF TG_OP = 'UPDATE' THEN
        detail := jsonb_build_object('role_before', OLD.role, 'role_after', NEW.role, 'username', who);
        PERFORM journal_write('member_updated', NULL, NULL, m.list_id, m.list_id, m.person_id, detail, NULL);
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

-- As 007, and a list's deletion first writes the member entries waiting
-- for it (above), in their order, as members_journal writes them with the
-- list gone: no arrivals or removals, "list_deleted" as a share's or a
-- removal's reason.
CREATE OR REPLACE FUNCTION lists_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_state lists := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    pending text;
    kept text := '';
    item text;
    part text[];
    who text;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    IF TG_OP = 'DELETE' THEN
        pending := current_setting('app.members_pending', true);
        IF pending <> '' AND position(OLD.id::text IN pending) > 0 THEN
            -- list person op role_before role_after (empty when none)
            FOREACH item IN ARRAY string_to_array(rtrim(pending, ';'), ';') LOOP
                part := string_to_array(item, ' ');
                IF part[1] <> OLD.id::text THEN
                    kept := kept || item || ';';
                    CONTINUE;
                END IF;
                who := coalesce((SELECT username FROM people WHERE id = part[2]::uuid), people_deleted_name(part[2]::uuid));
                PERFORM journal_write(
                    CASE part[3] WHEN 'INSERT' THEN 'member_added' WHEN 'UPDATE' THEN 'member_updated' ELSE 'member_removed' END,
                    NULL, NULL, OLD.id, OLD.id, part[2]::uuid,
                    CASE WHEN part[3] = 'UPDATE'
                         THEN jsonb_build_object('role_before', part[4], 'role_after', part[5], 'username', who)
                         ELSE jsonb_build_object('role_before', nullif(part[4], ''), 'role_after', nullif(part[5], ''),
                                                 'username', who, 'reason', 'list_deleted') END,
                    NULL);
            END LOOP;
            PERFORM set_config('app.members_pending', kept, true);
        END IF;
        -- The last 8 lists journaled deleted (37 characters each), for an entry after them (above).
        PERFORM set_config('app.list_journaled',
                           right(concat(current_setting('app.list_journaled', true), OLD.id, ' '), 296), true);
    END IF;
    PERFORM journal_write(
        CASE TG_OP WHEN 'INSERT' THEN 'list_created' WHEN 'UPDATE' THEN 'list_updated' ELSE 'list_deleted' END,
        NULL, NULL, row_state.id, row_state.id, NULL, to_jsonb(row_state), NULL);
    RETURN NULL;
END
$$;

-- As 007's list_members_journal, its DELETE in two (above). No lock of the
-- journal's (as 016): DROP and CREATE TRIGGER wait for list_members'
-- writers, one of which may wait at its commit for that lock.
DROP TRIGGER list_members_journal ON list_members;
CREATE CONSTRAINT TRIGGER list_members_journal AFTER INSERT OR UPDATE ON list_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION members_journal();
CREATE CONSTRAINT TRIGGER list_members_journal_emptied AFTER DELETE ON list_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('app.list_emptying', true) IS NOT DISTINCT FROM OLD.list_id::text)
    EXECUTE FUNCTION members_journal();
CREATE CONSTRAINT TRIGGER list_members_journal_removed AFTER DELETE ON list_members
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('app.list_emptying', true) IS DISTINCT FROM OLD.list_id::text)
    EXECUTE FUNCTION members_journal();
