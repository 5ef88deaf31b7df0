-- A TRUNCATE of the journal is refused outside READ COMMITTED. 017's
-- trigger deletes todo_changes_members' rows with its transaction's
-- snapshot: under REPEATABLE READ or SERIALIZABLE that snapshot is older
-- than the TRUNCATE's lock, so a member's row committed while the TRUNCATE
-- waited for the journal's writers is not seen and stays, beside a journal
-- TRUNCATE emptied whatever the snapshot (the rows 017 takes). Under READ
-- COMMITTED the DELETE's snapshot is its own, taken once the TRUNCATE holds
-- the journal: every writer of a member's row (who writes its entry first,
-- sql/015, core/pgoutput.py) has committed. A refusal takes no lock: taking
-- the rows whatever the snapshot would be a TRUNCATE of todo_changes_members,
-- whose lock, taken under the journal's, can deadlock with a reader (017).
-- CREATE OR REPLACE FUNCTION locks no table (as 016 and 017, none of the
-- journal's).
CREATE OR REPLACE FUNCTION todo_changes_forget_all() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        RAISE EXCEPTION 'TRUNCATE todo_changes under %', upper(current_setting('transaction_isolation'))
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'An older snapshot would leave rows of todo_changes_members that were committed after it.',
                  HINT = 'TRUNCATE the journal in a READ COMMITTED transaction.';
    END IF;
    DELETE FROM todo_changes_members;
    RETURN NULL;
END
$$;
