-- A person's deletion finds their lists by an index (docs/reliability.md,
-- section 12). lists.owner_id had none (lists_one_default is partial): the
-- cascade from people (the foreign key's DELETE FROM ONLY lists WHERE
-- owner_id = $1) and sql/021's trigger each read the whole table. With
-- 10,000 lists the DELETE's execution went from 0.77 to 0.50 ms in trigger
-- mode and from 1.95 to 0.86 ms in decoded mode (tests/test_db_locks.py
-- shows the plans; a list's creation reads 5 buffers where it read 3: the
-- index's entry).
--
-- A plain CREATE INDEX: the runner applies each file in a transaction
-- (core/migrations.py), where CONCURRENTLY is refused. It holds lists in
-- SHARE mode while it builds: writes of lists (creations, renames, a
-- deletion) wait for it, reads do not; at 10,000 lists it takes a few
-- milliseconds. A database with millions of lists can build it beforehand,
-- by hand, with CREATE INDEX CONCURRENTLY lists_owner ON lists (owner_id):
-- then this file finds it and builds nothing.
CREATE INDEX IF NOT EXISTS lists_owner ON lists (owner_id);

-- 021's lookup as a union: its OR of a member subquery and owner_id reads
-- lists whole (a hashed subplan filters every row, so no index can serve
-- the OR). Each side is an index scan now (list_members_person, lists_owner)
-- and the lists are taken by their key, still FOR UPDATE and in id order.
--
-- Trigger mode takes the lists the person owns, in id order, which the
-- cascade deletes anyway (so it waits for nothing it did not): the cascade
-- reaches them in its scan's order and deletes each one's todos
-- (lists_delete_contents, 007), and a statement over several of them
-- (theirs, an editor's), which takes them in id order (core/writes.py),
-- held one the cascade wanted while it waited for one the cascade held:
-- 40P01 (tests/test_db_locks.py). The lists they are only a member of stay free:
-- trigger mode's writes lock no member row, and the cascade deletes none
-- of those lists' todos.
CREATE OR REPLACE FUNCTION people_delete_lists_first() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT mode FROM journal_mode) = 'decoded' THEN
        PERFORM FROM lists WHERE id IN (SELECT list_id FROM list_members WHERE person_id = OLD.id
                                        UNION ALL SELECT id FROM lists WHERE owner_id = OLD.id)
        ORDER BY id FOR UPDATE;
    ELSE
        PERFORM FROM lists WHERE owner_id = OLD.id ORDER BY id FOR UPDATE;
    END IF;
    RETURN OLD;
END
$$;
