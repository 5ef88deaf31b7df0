-- A member entry names its person (detail's username, read by the feed's
-- member events, REST's and GraphQL's). A person deleted by hand (psql's
-- DELETE FROM people) has their member rows deleted by the cascade, and
-- the entries written at commit (members_journal, 007) read the username
-- from people, where the row is gone: the feed said the member "None"
-- (tests/test_review21_deleted_owner_seen.py). So the deletion keeps the
-- username for its transaction (a setting of its own per person, set by a
-- BEFORE ROW trigger while the row is there), and the entry falls back on
-- it. Both journal modes write member entries through this one function.
CREATE FUNCTION people_keep_username() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM set_config('app.gone_' || replace(OLD.id::text, '-', ''), OLD.username, true); RETURN OLD; END
$$;
CREATE TRIGGER people_keep_username BEFORE DELETE ON people FOR EACH ROW EXECUTE FUNCTION people_keep_username();

CREATE OR REPLACE FUNCTION members_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m list_members := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    list_alive boolean;
    who text;
    detail jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    who := coalesce((SELECT username FROM people WHERE id = m.person_id),
                    current_setting('app.gone_' || replace(m.person_id::text, '-', ''), true));
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
