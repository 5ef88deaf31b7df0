-- 027's member entries of a list gone at commit, their wait made exact:
--
-- * An entry whose list's list_deleted came before it (the list deleted
--   inside the member's statement, by a function in its WHERE or
--   RETURNING) is written at once, as 027 meant; 027 remembered only the
--   last 8 lists journaled deleted, and one whose function deleted 8 more
--   lists after its own waited for ever, never written. lists_journal now
--   keeps every list it journaled deleted in the transaction.
-- * A list deleted, made again with its id and deleted again by hand: the
--   second list's shares and removals were written at once (the first
--   list's list_deleted was remembered), before the second's todos'
--   deletions, which a member shared was then sent without having the rows.
--   A list made again with a deleted one's id (its list_created, at commit
--   in the order the rows changed) is no longer remembered: its entries
--   wait for its own list_deleted. Left as it was: a list deleted and made
--   again inside the member's own statement (its entry, queued after both,
--   waits for a later deletion of the list, or is written as one of a list
--   alive if there is none).
--
-- Both settings (the lists journaled deleted, app.list_journaled_*, and the
-- entries waiting, app.members_pending_*) are split by the first two hex
-- digits of the list's id: each list's append, look-up and flush copies and
-- searches one of 256 parts, not every list of the transaction (a setting
-- holding them all would grow with the lists deleted, for each: thousands
-- deleted in one transaction by hand would turn quadratic, as the lists'
-- marks did before 024). At most 256 setting names (on PostgreSQL 15 each
-- new name sorts the session's settings again: 024). The app's writes do
-- what they did: a list's deletion appends its id to a setting, and a
-- list's creation looks for its id in one more (nothing found, nothing
-- written). tests/test_list_journaled_exact.py,
-- tests/test_list_journaled_growth.py.
--
-- And a member entry names the person it is of when a person deleted by
-- hand and a person made with their id (psql's INSERT INTO people (id,
-- username)) share a transaction. The entries, written at commit, read the
-- username from people first, then the deleted one's kept by 023/026 (the
-- last deleted of the id): a deleted person's removals named the one made
-- with their id, and an id deleted, made again and deleted again named
-- both by the second. The id's deletions are now kept in order, each an
-- era of it (people_keep_username); a person made with a deleted id queues
-- a deferred trigger (people_made_again, its WHEN true only then) which at
-- commit, in the order the rows changed, moves the id to its next era; an
-- entry names its era's deleted person, or the person standing if that era
-- was not deleted. An entry waiting for its list's deletion (above) keeps
-- its era. Another username on another id was named right already. The
-- app's creation of a person and its member entries now look for the
-- person's deletion in this transaction first (the table's name, a setting
-- or two: nothing found); no todo trigger changes.
-- tests/test_member_named_when_made_again.py.

-- The setting keeping the username of `person`'s deletion number `era`
-- (from 0) for a role without TEMPORARY (026): 023's name for the first.
CREATE FUNCTION people_gone_setting(person uuid, era int) RETURNS text LANGUAGE sql AS $$
    SELECT concat('app.gone_', replace(person::text, '-', ''), '_' || nullif(era, 0))
$$;

-- The username of `person`'s deletion number `era` in this transaction,
-- NULL if none: 026's table, else its settings.
CREATE FUNCTION people_deleted_name(person uuid, era int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    gone text := people_gone_setting(person, era);
BEGIN
    IF to_regclass('pg_temp.people_deleted_names') IS NOT NULL THEN
        RETURN coalesce((SELECT username FROM pg_temp.people_deleted_names d WHERE d.id = person AND d.era = $2),
                        nullif(current_setting(gone, true), ''));
    END IF;
    RETURN nullif(current_setting(gone, true), '');
END
$$;
DROP FUNCTION people_deleted_name(uuid);

-- As 026, each deletion of an id kept under its era.
CREATE OR REPLACE FUNCTION people_keep_username() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    era int := 0;
BEGIN
    WHILE people_deleted_name(OLD.id, era) IS NOT NULL LOOP
        era := era + 1;
    END LOOP;
    IF to_regclass('pg_temp.people_deleted_names') IS NULL THEN
        IF NOT has_database_privilege(current_database(), 'TEMPORARY') THEN
            PERFORM set_config(people_gone_setting(OLD.id, era), OLD.username, true);
            RETURN OLD;
        END IF;
        CREATE TEMPORARY TABLE people_deleted_names (id uuid, era int, username text NOT NULL, PRIMARY KEY (id, era))
            ON COMMIT DROP;
    END IF;
    INSERT INTO pg_temp.people_deleted_names VALUES (OLD.id, era, OLD.username);
    RETURN OLD;
END
$$;

-- The era of `person` the commit has reached (above).
CREATE FUNCTION people_era(person uuid) RETURNS int LANGUAGE sql AS $$
    SELECT coalesce(nullif(current_setting('app.made_again_' || replace(person::text, '-', ''), true), '')::int, 0)
$$;

-- The username an entry of `person` in `era` names (above).
CREATE FUNCTION people_named(person uuid, era int) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(people_deleted_name(person, era), (SELECT username FROM people WHERE id = person))
$$;

CREATE FUNCTION people_made_again() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.made_again_' || replace(NEW.id::text, '-', ''), (people_era(NEW.id) + 1)::text, true);
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER people_made_again AFTER INSERT ON people DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (people_deleted_name(NEW.id, 0) IS NOT NULL) EXECUTE FUNCTION people_made_again();

CREATE OR REPLACE FUNCTION members_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    m list_members := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    list_alive boolean;
    -- This list's parts of the lists journaled deleted and of the entries waiting (above).
    journaled text := 'app.list_journaled_' || left(m.list_id::text, 2);
    pending text := 'app.members_pending_' || left(m.list_id::text, 2);
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
            waits := position(m.list_id::text IN coalesce(current_setting(journaled, true), '')) = 0;
        ELSE
            waits := position(concat(m.list_id, ' ', m.person_id, ' ') IN coalesce(current_setting(pending, true), '')) > 0;
        END IF;
        IF waits THEN
            PERFORM set_config(pending, concat(current_setting(pending, true),
                m.list_id, ' ', m.person_id, ' ', TG_OP, ' ', CASE WHEN TG_OP <> 'INSERT' THEN OLD.role END,
                ' ', CASE WHEN TG_OP <> 'DELETE' THEN NEW.role END, ' ', people_era(m.person_id), ';'), true);
            RETURN NULL;
        END IF;
    END IF;
    who := people_named(m.person_id, people_era(m.person_id));
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
    journaled text := 'app.list_journaled_' || left(row_state.id::text, 2);
    deleted text := current_setting(journaled, true);
    waiting text := 'app.members_pending_' || left(row_state.id::text, 2);
    pending text;
    kept text := '';
    item text;
    part text[];
    who text;
BEGIN
    PERFORM pg_advisory_xact_lock(7305202417);
    IF TG_OP = 'DELETE' THEN
        pending := current_setting(waiting, true);
        IF pending <> '' AND position(OLD.id::text IN pending) > 0 THEN
            -- list person op role_before role_after (empty when none) era
            FOREACH item IN ARRAY string_to_array(rtrim(pending, ';'), ';') LOOP
                part := string_to_array(item, ' ');
                IF part[1] <> OLD.id::text THEN
                    kept := kept || item || ';';
                    CONTINUE;
                END IF;
                who := people_named(part[2]::uuid, part[6]::int);
                PERFORM journal_write(
                    CASE part[3] WHEN 'INSERT' THEN 'member_added' WHEN 'UPDATE' THEN 'member_updated' ELSE 'member_removed' END,
                    NULL, NULL, OLD.id, OLD.id, part[2]::uuid,
                    CASE WHEN part[3] = 'UPDATE'
                         THEN jsonb_build_object('role_before', part[4], 'role_after', part[5], 'username', who)
                         ELSE jsonb_build_object('role_before', nullif(part[4], ''), 'role_after', nullif(part[5], ''),
                                                 'username', who, 'reason', 'list_deleted') END,
                    NULL);
            END LOOP;
            PERFORM set_config(waiting, kept, true);
        END IF;
        -- Every list journaled deleted, for an entry after it (above).
        PERFORM set_config(journaled, concat(deleted, OLD.id, ' '), true);
    ELSIF TG_OP = 'INSERT' AND position(NEW.id::text IN deleted) > 0 THEN
        -- Made again with a deleted list's id (above): its entries wait for its own deletion.
        PERFORM set_config(journaled, replace(deleted, NEW.id || ' ', ''), true);
    END IF;
    PERFORM journal_write(
        CASE TG_OP WHEN 'INSERT' THEN 'list_created' WHEN 'UPDATE' THEN 'list_updated' ELSE 'list_deleted' END,
        NULL, NULL, row_state.id, row_state.id, NULL, to_jsonb(row_state), NULL);
    RETURN NULL;
END
$$;
