-- Journal retention: the app deletes the oldest entries in small batches and
-- records here how far it went, so a reader can tell an entry that was
-- pruned (its cursor expired) from a position no transaction ever committed.
CREATE TABLE todo_changes_pruned (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    through bigint  NOT NULL
);

INSERT INTO todo_changes_pruned (through) VALUES (0);
