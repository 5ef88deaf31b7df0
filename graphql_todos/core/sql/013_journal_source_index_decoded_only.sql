-- todo_changes_source (011) serves the sequencer alone (its ON CONFLICT
-- (source) drops a batch streamed again), yet every entry the trigger
-- writes opens it, prepares its predicate again and closes it (a row
-- trigger's INSERT is an executor of its own): 5k instructions a row, 2%
-- of one UPDATE of 1,000 rows (docs/bench-ab-journal.md, seventh round). It
-- now exists in decoded mode only: the switch to decoded builds it, the
-- switch back drops it (core/journal_mode.py).
DO $$
BEGIN
    IF (SELECT mode FROM journal_mode) = 'trigger' THEN
        DROP INDEX todo_changes_source;
    END IF;
END
$$;
