-- The journal's writers of 010, doing less for a transaction that
-- journals many rows (issue 21: one UPDATE of 1,000 rows cost PostgreSQL
-- 1.2 times what the peers' two NOTIFY triggers do; building and queueing
-- each entry's notification was two fifths of the journal's part). Same
-- entries, positions, checks, errors and cursor NOTICEs; what changes is the
-- notifications of a transaction's todo rows past its first hundred
-- (docs/bench-ab-rows.md, "The 1,000-row UPDATE at the database", has the
-- measurements):
-- * A transaction's first 100 todo rows are notified as before, each with
--   its entry, so a write of up to 100 rows costs a listener no read.
-- * Past them, one notification names the first entry not carried,
--   {"position": P, "op": null, "through": null}, as journal_expand's range
--   does (its end is not known yet: the rest of the transaction). A
--   listener reads the journal from where it is, as after any notification
--   without its entry: one query per JOURNAL_BATCH entries instead of a
--   payload built, queued and parsed per entry.
-- * The count is kept in the transaction-local setting app.journal_rest:
--   the first position past the hundred, its negative once that
--   notification is sent (so it is sent once). A subtransaction that rolls
--   back takes back its notifications and its settings alike. Positions
--   follow each other within a transaction (taken under the commit-order
--   lock). The count starts at the transaction's second todo row (its
--   first finds no list marked: todos_journal's `marked`), so a single-row
--   write reads and sets no setting and costs what 010's did plus one
--   boolean test. Entries of lists, members and access are always carried
--   (p_count's default).
-- journal_write takes p_count, so it is dropped and made again: its callers
-- are plpgsql and look it up by name at their first call.

DROP FUNCTION journal_write(text, uuid, jsonb, uuid, uuid, uuid, jsonb, jsonb);
CREATE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb, p_count boolean DEFAULT false
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint;
    committed timestamptz;
    payload text;
    called text;
    -- app.journal_rest (above); NULL before the transaction's second todo row.
    rest bigint;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (nextval('todo_changes_position'), change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail,
            p_before_row, nullif(current_setting('app.mutation', true), ''))
    RETURNING position, changed_at INTO pos, committed;
    -- Before the notification's branches (one of them returns early).
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    IF p_count THEN
        rest := nullif(current_setting('app.journal_rest', true), '')::bigint;
        IF rest IS NULL THEN
            called := set_config('app.journal_rest', (pos + 99)::text, true);
        ELSIF rest < 0 OR pos >= rest THEN
            IF rest > 0 THEN
                called := pg_notify('todo_changes', '{"position": ' || rest || ', "op": null, "through": null}');
                called := set_config('app.journal_rest', (-rest)::text, true);
            END IF;
            RETURN pos;
        END IF;
    END IF;
    -- As 010: a row's entry is built as json text, any other as jsonb with
    -- its detail's nulls left out.
    IF p_todo IS NOT NULL AND p_detail IS NULL AND p_before_row IS NULL THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                     'list_before', p_before, 'list_after', p_after, 'person', p_person,
                                     'todo', p_todo)::text;
    ELSE
        payload := (jsonb_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                       'list_before', p_before, 'list_after', p_after, 'person', p_person)
                    || jsonb_strip_nulls(jsonb_build_object('todo', p_todo, 'detail', p_detail,
                                                            'before', p_before_row)))::text;
    END IF;
    -- NOTIFY payloads stop short of 8000 bytes; past that the head alone
    -- goes, and the listener reads the entry back.
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', p_todo_id, 'changed_at', committed,
                                     'list_before', p_before, 'list_after', p_after, 'person', p_person)::text;
    END IF;
    called := pg_notify('todo_changes', payload);
    RETURN pos;
END
$$;

-- As 010, telling journal_write to count every row but the transaction's first.
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op text := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    row_state todos := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    l_before uuid := CASE WHEN TG_OP <> 'INSERT' THEN OLD.list_id END;
    l_after uuid := CASE WHEN TG_OP <> 'DELETE' THEN NEW.list_id END;
    -- A row moved to another list: as it was, for the readers of the one it left.
    before_row jsonb := CASE WHEN l_before <> l_after THEN to_jsonb(OLD) END;
    -- Whom the statement acts for; NULL (psql, the service token): no check (007).
    actor uuid := nullif(current_setting('app.person_id', true), '')::uuid;
    -- The lists this transaction has marked for todos so far (journal_mark_list).
    marked text := coalesce(current_setting('app.journal_todos', true), '');
    called text;
BEGIN
    -- At commit, under the commit-order lock (002): membership as of this position.
    called := pg_advisory_xact_lock(7305202417);
    -- The writer's right, judged again at its commit position (007): on the
    -- list a row leaves (unless that list is being deleted) and the one it is in.
    IF actor IS NOT NULL THEN
        IF l_before IS NOT NULL AND l_before IS DISTINCT FROM l_after
           AND current_setting('app.list_deleting', true) IS DISTINCT FROM l_before::text THEN
            PERFORM FROM list_members WHERE list_id = l_before AND person_id = actor AND role <> 'viewer';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'may no longer edit this list' USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
        IF l_after IS NOT NULL THEN
            PERFORM FROM list_members WHERE list_id = l_after AND person_id = actor AND role <> 'viewer';
            IF NOT FOUND THEN
                RAISE EXCEPTION 'may no longer edit this list' USING ERRCODE = 'insufficient_privilege';
            END IF;
        END IF;
    END IF;
    IF l_before IS NOT NULL AND position(l_before::text IN marked) = 0 THEN
        called := journal_mark_list('todos', l_before);
    END IF;
    IF l_after IS NOT NULL AND l_after IS DISTINCT FROM l_before AND position(l_after::text IN marked) = 0 THEN
        called := journal_mark_list('todos', l_after);
    END IF;
    called := journal_write(change_op, row_state.id, to_jsonb(row_state), l_before, l_after, NULL, NULL, before_row, marked <> '');
    RETURN NULL;
END
$$;
