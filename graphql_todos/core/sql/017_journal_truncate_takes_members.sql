-- A TRUNCATE of the journal takes its entries' rows of todo_changes_members
-- (015) with them, as a DELETE does (todo_changes_forget): TRUNCATE fires no
-- DELETE trigger, and the rows it left would be read by a person's lists at
-- a cursor (core/repository.py) as entries still kept; after TRUNCATE ...
-- RESTART IDENTITY a new member entry could take a left row's position (its
-- write refused as a duplicate key). A trigger of TRUNCATE, not a foreign key
-- ON DELETE CASCADE: that is a check per member entry written, a trigger per
-- entry retention deletes, member or not, and it would refuse a TRUNCATE of
-- todo_changes alone.
-- A DELETE, not a TRUNCATE, of the small table: it waits for no reader of
-- todo_changes_members (a TRUNCATE's lock would, while holding the
-- journal's: a deadlock with one that reads the journal next).
CREATE FUNCTION todo_changes_forget_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM todo_changes_members;
    RETURN NULL;
END
$$;
-- As 016, a migration holding no lock of the journal's (its commit-order
-- lock): CREATE TRIGGER waits for the journal's writers, one of which may
-- wait at its commit for that lock.
CREATE TRIGGER todo_changes_forget_all AFTER TRUNCATE ON todo_changes
    FOR EACH STATEMENT EXECUTE FUNCTION todo_changes_forget_all();
