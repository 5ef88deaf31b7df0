-- A TRUNCATE of the journal that takes todo_changes_members too (in the
-- same statement, `TRUNCATE todo_changes, todo_changes_members`, or earlier
-- in its transaction) is not refused under an older snapshot (018): that
-- TRUNCATE took every member's row whatever the snapshot, and its lock,
-- held to the commit, lets no other writer add one; 017's DELETE then
-- finds only rows this transaction wrote since, which its snapshot sees.
-- The members' BEFORE TRUNCATE trigger marks the transaction so (BEFORE:
-- a statement's BEFORE TRUNCATE triggers all fire before its AFTER ones,
-- whatever the tables' order). The mark is a setting local to the
-- transaction: a savepoint rolled back takes it back with the TRUNCATE. A
-- LOCK of the members' table is no such mark: rows committed between the
-- snapshot and the lock stay unseen.
-- As 016 and 017, no lock of the journal's (its commit-order lock):
-- CREATE TRIGGER waits only for the open writers of todo_changes_members.
CREATE FUNCTION todo_changes_members_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('graphql_todos.members_truncated', 'on', true);
    RETURN NULL;
END
$$;
CREATE TRIGGER todo_changes_members_truncated BEFORE TRUNCATE ON todo_changes_members
    FOR EACH STATEMENT EXECUTE FUNCTION todo_changes_members_truncated();
CREATE OR REPLACE FUNCTION todo_changes_forget_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted')
        AND current_setting('graphql_todos.members_truncated', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'TRUNCATE todo_changes under %', upper(current_setting('transaction_isolation'))
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'An older snapshot would leave rows of todo_changes_members that were committed after it.',
                  HINT = 'TRUNCATE the journal in a READ COMMITTED transaction, or with todo_changes_members in the same statement.';
    END IF;
    DELETE FROM todo_changes_members;
    RETURN NULL;
END
$$;
