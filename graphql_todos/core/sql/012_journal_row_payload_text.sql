-- A row's notification built by concatenating its parts, not by
-- json_build_object (issue 21: one UPDATE of 1,000 watched rows cost the
-- database more than PostGraphile 5's two NOTIFY triggers).
-- json_build_object looks up each argument's type in the catalog cache on
-- every call (json_categorize_type): 18k of the trigger's 164k instructions
-- per row (docs/bench-ab-journal.md, seventh round). The payload is the same
-- text to the byte: json_build_object's spacing (" : " and ", "), the
-- position as a number, the uuids quoted (they need no escape), the op
-- (journal_op's values need none either), the time as to_json prints it
-- (json_build_object's own encoding) and the row as jsonb prints it, as
-- json_build_object did. The other entries and the head past 7,900 bytes
-- are built as 010 built them: rare.
--
-- In decoded mode (011) journal_write is the switch's stager, and trigger
-- mode's writer waits in journal_mode.restore for a switch back: there the
-- new writer goes to restore, in the old one's place, and the stager stays.
CREATE TEMPORARY TABLE journal_stager ON COMMIT DROP AS
    SELECT pg_get_functiondef('journal_write'::regproc) AS definition FROM journal_mode WHERE mode = 'decoded';

CREATE OR REPLACE FUNCTION journal_write(
    change_op text, p_todo_id uuid, p_todo jsonb, p_before uuid, p_after uuid,
    p_person uuid, p_detail jsonb, p_before_row jsonb
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    pos bigint;
    committed timestamptz;
    payload text;
    called text;
BEGIN
    INSERT INTO todo_changes (position, op, todo_id, todo, list_before, list_after, person_id, detail, before, mutation)
    VALUES (nextval('todo_changes_position'), change_op, p_todo_id, p_todo, p_before, p_after, p_person, p_detail,
            p_before_row, nullif(current_setting('app.mutation', true), ''))
    RETURNING position, changed_at INTO pos, committed;
    IF p_todo IS NOT NULL AND p_detail IS NULL AND p_before_row IS NULL THEN
        -- A row's entry: the head and the row, as json_build_object prints them.
        payload := '{"position" : ' || pos::text || ', "op" : "' || change_op || '", "id" : '
                   || coalesce('"' || p_todo_id::text || '"', 'null') || ', "changed_at" : ' || to_json(committed)::text
                   || ', "list_before" : ' || coalesce('"' || p_before::text || '"', 'null')
                   || ', "list_after" : ' || coalesce('"' || p_after::text || '"', 'null')
                   || ', "person" : ' || coalesce('"' || p_person::text || '"', 'null')
                   || ', "todo" : ' || p_todo::text || '}';
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
    IF current_setting('app.cursor_notice', true) = 'on' THEN
        -- SQLSTATE 01GT0 (a warning class of ours) tells it from any other NOTICE.
        RAISE NOTICE USING MESSAGE = 'graphql-todos cursor ' || pos, ERRCODE = '01GT0';
    END IF;
    RETURN pos;
END
$$;

-- restore holds the two triggers' definitions, then journal_write's, then
-- journal_expand's (core/journal_mode.py's TO_DECODED): journal_write's is
-- the first function's, up to the second's.
UPDATE journal_mode SET restore = overlay(restore PLACING pg_get_functiondef('journal_write'::regproc)
    FROM position('CREATE OR REPLACE FUNCTION' IN restore)
    FOR position(E';\nCREATE OR REPLACE FUNCTION' IN substr(restore, position('CREATE OR REPLACE FUNCTION' IN restore))) - 1)
WHERE mode = 'decoded';
DO $$
BEGIN
    EXECUTE coalesce((SELECT definition FROM journal_stager), '');
END
$$;
