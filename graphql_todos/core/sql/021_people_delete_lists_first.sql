-- A person deleted by hand (psql's DELETE FROM people) takes their lists'
-- rows before any member row, as the app always does (docs/reliability.md,
-- "The app takes a list's row before its members' rows"). In decoded mode
-- (011) a member's todo write locks its list FOR KEY SHARE and then its
-- member row FOR SHARE (core/writes.py), and a member's removal commits by
-- locking the list FOR UPDATE (journal_stage_expand) to read its removals.
-- The DELETE's cascade deleted the person's member rows first, and its
-- commit then waited for each list holding them: a write of theirs that
-- held the list and next wanted its member row closed a deadlock (40P01).
--
-- So a BEFORE ROW trigger on people locks, FOR UPDATE and in one order (by
-- id, as two deletions must agree), every list the cascade reaches: those
-- the person is a member of, whose rows it deletes, and those they own,
-- which it deletes whole (lists_delete_contents, 007, takes each list's row
-- before its contents). The trigger runs with the person's row locked
-- (GetTupleForTrigger), before the cascade (AFTER triggers at the
-- statement's end); the app takes no person's row before a list's of that
-- person: a share's foreign key takes the person named FOR KEY SHARE after
-- the list, and the person's lists hold them already, or do not yet (the
-- member row a share inserts is not theirs until it commits, and its
-- foreign key makes the DELETE wait for that). A writer behind the DELETE
-- waits for the list holding nothing, and at its commit finds the person's
-- member row gone.
--
-- Trigger mode's commits lock no list and its writes no member row:
-- nothing to order, and the DELETE waits for no list's writers there. A
-- deletion that read 'trigger' as a switch to decoded (core/journal_mode.py)
-- commits is ordered as before this file: its 40P01, if one came, is the
-- statement run again (core/database.py).
--
-- A DELETE FROM list_members by hand cannot be ordered so: a BEFORE ROW
-- trigger of list_members runs with the member row already locked, and a
-- statement trigger does not know the rows.
CREATE FUNCTION people_delete_lists_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT mode FROM journal_mode) = 'decoded' THEN
        PERFORM FROM lists
        WHERE id IN (SELECT list_id FROM list_members WHERE person_id = OLD.id) OR owner_id = OLD.id
        ORDER BY id
        FOR UPDATE;
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER people_delete_lists_first BEFORE DELETE ON people
    FOR EACH ROW EXECUTE FUNCTION people_delete_lists_first();
