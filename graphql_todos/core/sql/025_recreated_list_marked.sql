-- 024 left unmarked for todos a list of the id this transaction last
-- deleted (app.list_deleting, which stays set to the transaction's end):
-- a list deleted and made again with its id, by hand, could then have its
-- todos and its members changed in one transaction (review24; refused
-- before 024). The mark is skipped only while lists_delete_contents empties
-- that list (app.list_emptying, set around its deletes), as 024 meant it,
-- and after, for a list gone (looked up only in a transaction that deleted
-- a list). Left different from before 024, in decoded mode alone: a list
-- deleted, made again and only its members changed in one transaction is
-- let through (its old todos' marks, made while emptying, were what
-- refused it). tests/test_review24_recreated_list_marks.py.

CREATE OR REPLACE FUNCTION lists_delete_contents() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('app.list_deleting', OLD.id::text, true);
    PERFORM set_config('app.list_emptying', OLD.id::text, true);
    DELETE FROM todos WHERE list_id = OLD.id;
    DELETE FROM list_members WHERE list_id = OLD.id;
    PERFORM set_config('app.list_emptying', '', true);
    RETURN OLD;
END
$$;

CREATE OR REPLACE FUNCTION journal_mark_list(kind text, p_list uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    other text := CASE kind WHEN 'todos' THEN 'members' ELSE 'todos' END;
    deleting text := current_setting('app.list_deleting', true);
    called text;
BEGIN
    IF p_list IS NULL THEN
        RETURN;
    END IF;
    -- A list being emptied for its deletion, or gone (above): no mark. A
    -- plain IF, its query run only after some list's deletion.
    IF kind = 'todos' AND deleting <> '' THEN
        IF current_setting('app.list_emptying', true) = p_list::text THEN
            RETURN;
        END IF;
        PERFORM FROM lists WHERE id = p_list;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    IF position(p_list::text IN coalesce(current_setting('app.journal_' || other, true), '')) > 0 THEN
        RAISE EXCEPTION 'change the members of list % and its todos in separate transactions', p_list
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF position(p_list::text IN coalesce(current_setting('app.journal_' || kind, true), '')) = 0 THEN
        called := set_config('app.journal_' || kind,
                             coalesce(current_setting('app.journal_' || kind, true), '') || p_list::text, true);
    END IF;
END
$$;
