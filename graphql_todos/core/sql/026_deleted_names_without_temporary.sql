-- 024 kept a deleted person's username in a temporary table, so a role
-- without the database's TEMPORARY privilege (revoked from PUBLIC, as
-- hardened databases do) could delete no person at all: "permission denied
-- to create temporary tables", from a trigger it never named. Such a role
-- keeps the name as 023 did, in a setting of its own per person (on
-- PostgreSQL 15 each new name sorts the session's settings again: many
-- people in one transaction grow as before 024); any other keeps 024's
-- table. The name is looked up in both (SET ROLE may change the privilege
-- within a transaction). tests/test_review25_deletions.py.

CREATE OR REPLACE FUNCTION people_keep_username() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.people_deleted_names') IS NULL THEN
        IF NOT has_database_privilege(current_database(), 'TEMPORARY') THEN
            PERFORM set_config('app.gone_' || replace(OLD.id::text, '-', ''), OLD.username, true);
            RETURN OLD;
        END IF;
        CREATE TEMPORARY TABLE people_deleted_names (id uuid PRIMARY KEY, username text NOT NULL) ON COMMIT DROP;
    END IF;
    -- The same id deleted again in one transaction (inserted again by hand between): its last name.
    INSERT INTO pg_temp.people_deleted_names VALUES (OLD.id, OLD.username)
    ON CONFLICT (id) DO UPDATE SET username = excluded.username;
    RETURN OLD;
END
$$;

CREATE OR REPLACE FUNCTION people_deleted_name(person uuid) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.people_deleted_names') IS NOT NULL THEN
        RETURN coalesce((SELECT username FROM pg_temp.people_deleted_names WHERE id = person),
                        nullif(current_setting('app.gone_' || replace(person::text, '-', ''), true), ''));
    END IF;
    RETURN nullif(current_setting('app.gone_' || replace(person::text, '-', ''), true), '');
END
$$;
