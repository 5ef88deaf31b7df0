-- A row's journal entry written by todos_journal itself (issue 21: one
-- UPDATE of 1,000 watched rows, the database's part). Same entries,
-- positions, checks, errors and payloads, to the byte, as 012; the changes
-- (docs/bench-ab-journal.md, eighth round, has the measurements):
-- * The common entry (a row created, updated in its list, or deleted) is
--   written here, not by a call of journal_write: one plpgsql call a row,
--   not two. A row moved to another list still goes to journal_write (its
--   payload is 010's jsonb one), as do the entries of lists, members and
--   access. journal_write is unchanged, so decoded mode's switch (011, 012)
--   has nothing new to save or restore: it drops and restores the triggers
--   by name, and this function is theirs.
-- * op is a journal_op variable: the INSERT's VALUES has no domain coercion
--   to set up again for each row (a row trigger's INSERT is an executor of
--   its own; the variable's check is set up once per transaction).
-- * The position (nextval) and the time (clock_timestamp, the column's
--   default) are taken just before the INSERT, in plpgsql, and the INSERT
--   returns nothing: its executor has no functions to look up and no
--   RETURNING to build, for each row. Under the commit-order lock, as before.
CREATE OR REPLACE FUNCTION todos_journal() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_op journal_op := CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END;
    l_before uuid := CASE WHEN TG_OP <> 'INSERT' THEN OLD.list_id END;
    l_after uuid := CASE WHEN TG_OP <> 'DELETE' THEN NEW.list_id END;
    -- Whom the statement acts for; NULL (psql, the service token): no check (007).
    actor uuid := nullif(current_setting('app.person_id', true), '')::uuid;
    -- The lists this transaction has marked for todos so far (journal_mark_list).
    marked text := coalesce(current_setting('app.journal_todos', true), '');
    key text := nullif(current_setting('app.mutation', true), '');
    called text;
    row_id uuid;
    todo jsonb;
    pos bigint;
    committed timestamptz;
    payload text;
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
    -- A row moved to another list: as it was, for the readers of the one it left.
    IF l_before <> l_after THEN
        called := journal_write(change_op, NEW.id, to_jsonb(NEW), l_before, l_after, NULL, NULL, to_jsonb(OLD));
        RETURN NULL;
    END IF;
    -- NEW or OLD named as it is: a CASE choosing between them costs a copy (012).
    IF TG_OP = 'DELETE' THEN
        row_id := OLD.id;
        todo := to_jsonb(OLD);
    ELSE
        row_id := NEW.id;
        todo := to_jsonb(NEW);
    END IF;
    pos := nextval('todo_changes_position');
    committed := clock_timestamp();
    INSERT INTO todo_changes (position, op, todo_id, todo, changed_at, list_before, list_after, mutation)
    VALUES (pos, change_op, row_id, todo, committed, l_before, l_after, key);
    -- The entry as 010's json_build_object printed it (012).
    payload := concat('{"position" : ', pos, ', "op" : "', change_op, '", "id" : "', row_id,
                      '", "changed_at" : ', to_json(committed),
                      ', "list_before" : ', CASE WHEN l_before IS NULL THEN 'null' ELSE concat('"', l_before, '"') END,
                      ', "list_after" : ', CASE WHEN l_after IS NULL THEN 'null' ELSE concat('"', l_after, '"') END,
                      ', "person" : null, "todo" : ', todo, '}');
    -- NOTIFY payloads stop short of 8000 bytes; past that the head alone
    -- goes, and the listener reads the entry back.
    IF octet_length(payload) >= 7900 THEN
        payload := json_build_object('position', pos, 'op', change_op, 'id', row_id, 'changed_at', committed,
                                     'list_before', l_before, 'list_after', l_after, 'person', NULL::uuid)::text;
    END IF;
    called := pg_notify('todo_changes', payload);
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN NULL;
END
$$;
