-- 015's table holds the membership entries: their partial index (007) goes.
-- A migration of its own, holding no lock of the journal's: DROP INDEX waits
-- for the transactions that read todo_changes, and a writer among them takes
-- the journal's commit-order lock at its commit, which 015 holds to its end.
DROP INDEX todo_changes_membership;
