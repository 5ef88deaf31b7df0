-- The journal fed by logical decoding, an opt-in mode (JOURNAL=decoded;
-- docs/design/journal-decoding.md, issue 21). This file only adds what
-- that mode needs; it changes no trigger, so a database stays in today's
-- mode (JOURNAL=trigger) until an instance started with JOURNAL=decoded
-- switches it (core/journal_mode.py, under the migrations lock): the
-- functions below are what the switch puts in place of the triggers.

-- Each entry the sequencer writes names the change it came from (its LSN,
-- and "+n" for the n-th further row of one multi-row record, as COPY
-- writes them) and its transaction (xid8: a writer's cursor is the entry of
-- its xid). A batch streamed again after a crash meets the index and is
-- dropped (ON CONFLICT DO NOTHING): each change journaled once. Partial:
-- the trigger's entries (no source) cost the index nothing.
ALTER TABLE todo_changes ADD COLUMN source text, ADD COLUMN xid xid8;
CREATE UNIQUE INDEX todo_changes_source ON todo_changes (source) WHERE source IS NOT NULL;

-- A decoded UPDATE or DELETE carries the old row whole: a move's old list
-- (list_before) and row (before), as the trigger reads them from OLD. At
-- wal_level logical only, and in both modes: some 90 more WAL bytes per
-- single-row UPDATE (11%, with the trigger's journal entry), none per INSERT.
ALTER TABLE todos REPLICA IDENTITY FULL;
-- What the sequencer's slot decodes: the todos' changes (and, by
-- pgoutput's messages option, the transactional messages below).
CREATE PUBLICATION graphql_todos FOR TABLE todos;

-- Which mode the database is in: the first instance of a mode writes it,
-- every instance compares it at start. `restore`: in decoded mode, the
-- trigger mode's definitions of the functions the switch replaced, for a
-- switch back.
CREATE TABLE journal_mode (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    mode    text    NOT NULL CHECK (mode IN ('trigger', 'decoded')),
    restore text
);
INSERT INTO journal_mode (mode) VALUES ('trigger');

-- An entry other than a todo row's (a list's, a member's, an arrival or a
-- removal, an access entry), staged for the sequencer: a transactional
-- logical message (prefix graphql_todos_entry), decoded at its place in its
-- transaction's WAL, so the sequencer numbers it in commit order with the
-- row changes around it. No position (NULL), no NOTIFY. Its fields are
-- journal_write's, and the mutation key as journal_write reads it. In
-- decoded mode journal_write calls this (core/journal_mode.py's switch),
-- so 007's triggers of lists, members and access entries stay as they are.
CREATE TYPE journal_entry AS (
    op journal_op, todo_id uuid, todo jsonb, list_before uuid, list_after uuid, person_id uuid, detail jsonb,
    before jsonb, mutation text
);

CREATE FUNCTION journal_stage(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE sql AS $$
    SELECT NULL::bigint FROM pg_logical_emit_message(true, 'graphql_todos_entry', to_jsonb(ROW(
        change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail, p_before_row,
        nullif(current_setting('app.mutation', true), ''))::journal_entry)::text)
$$;

-- journal_expand's entries (a reader's arrivals or removals: one per row of
-- the list, in list order), staged: one message each, so each has an LSN.
-- The list's rows are read with the list's row locked FOR UPDATE: every
-- todo write of the list holds that row FOR KEY SHARE until it commits (an
-- INSERT's or a move's foreign key does; the app's UPDATE and DELETE take
-- it), so none commits between this read and this commit, and the rows
-- read are the rows at this commit's place in the journal. Without the
-- commit-order lock (which the todo writes no longer take), that is what
-- orders a share against the list's writes. In decoded mode journal_expand
-- calls this.
CREATE FUNCTION journal_stage_expand(change_op text, p_list uuid, p_person uuid) RETURNS void LANGUAGE sql AS $$
    SELECT FROM lists WHERE id = p_list FOR UPDATE;
    SELECT count(journal_stage(change_op, t.id, CASE WHEN change_op = 'arrived' THEN to_jsonb(t) END,
                               CASE WHEN change_op = 'removed' THEN p_list END,
                               CASE WHEN change_op = 'arrived' THEN p_list END,
                               p_person, NULL, CASE WHEN change_op = 'removed' THEN to_jsonb(t) END))
    FROM (SELECT * FROM todos WHERE list_id = p_list ORDER BY created_time, id) t
$$;

-- The list marks of 007 (a transaction may not change a list's members and
-- its todos: arrivals and removals are read at commit), kept in decoded
-- mode by a plain row trigger on todos: no lock, not deferred. A todo
-- change marks its lists at once; members_journal marks at commit, and
-- raises if the todos of that list were changed (journal_mark_list).
CREATE FUNCTION todos_mark() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    marked text := coalesce(current_setting('app.journal_todos', true), '');
    called text;
BEGIN
    IF TG_OP <> 'INSERT' AND position(OLD.list_id::text IN marked) = 0 THEN
        called := journal_mark_list('todos', OLD.list_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.list_id IS DISTINCT FROM OLD.list_id AND position(NEW.list_id::text IN marked) = 0 THEN
        called := journal_mark_list('todos', NEW.list_id);
    END IF;
    RETURN NULL;
END
$$;
