import { useEffect, useRef, useState, type KeyboardEvent, type MouseEvent } from 'react';
import { isolate } from './bidi';
import type { Commands } from './commands';
import { changedElsewhereNotice, renames, type Edited, type Refusal } from './editing';
import type { TodoList } from './lists';
import { MoveMenu } from './MoveMenu';
import { useOptimisticToggle } from './optimistic';
import { MAX_TITLE_LENGTH, normalizeTitle, type Todo } from './todos';

interface Props {
  todo: Todo;
  editing: boolean;
  onEdit(id: string | null): void;
  commands: Commands;
  /** A viewer's row: its checkbox disabled, no editing, no delete button. */
  readOnly?: boolean;
  /** The lists the row may move to (AUTH=accounts): none, no move control. */
  moveTargets: readonly TodoList[];
  onMove(id: string, list: TodoList): void;
  /** The row left while its editor held a change (deleted, or its list unshared): the draft. */
  onDraftLost?(todo: Todo, draft: string): void;
  /** The user's edits of the row the server refused (its editor's notice tells them as such). */
  refusals?: readonly Refusal[];
  /** A list's name, when the page knows it (a row moved meanwhile says where). */
  listName?(id: string): string | undefined;
}

export function TodoItem({
  todo,
  editing,
  onEdit,
  commands,
  readOnly = false,
  moveTargets,
  onMove,
  onDraftLost,
  refusals,
  listName,
}: Props) {
  const [draft, setDraft] = useState(todo.title);
  // The row as the editor opened on it, and when: what another page changes meanwhile is
  // told, and the user's own edit refused since then as that (editing.ts).
  const [opened, setOpened] = useState<{ row: Edited; at: number }>({ row: todo, at: 0 });
  const input = useRef<HTMLInputElement>(null);
  const label = useRef<HTMLLabelElement>(null);
  const text = useRef<HTMLElement>(null);
  // Enter and Escape end editing, and the blur that may follow when the field unmounts
  // must neither save twice nor save what Escape cancelled. Reset when a save fails, so
  // the kept draft can be saved again.
  const finished = useRef(false);
  // Editing ended from the keyboard: give focus back to the row, not to <body>.
  const refocus = useRef(false);
  // The delete button is transparent until its row is hovered or it has focus (app.css).
  // A mouse hovers it before it presses; a finger does not: a tap at the end of a long
  // title, which runs under the button, would delete the row unseen. Read as the press
  // begins (a touch's pointerdown comes before the tap hovers the row). A pen that does
  // not hover hovers the row with its press, before its pointerdown: it counts as shown
  // only when the pointer hovered the row before it pressed (`hovered`: a pointer over
  // it with no button down, as a mouse's or a hovering pen's, or a row moved under a
  // still mouse). A row that slid under a still mouse is hovered, and its button drawn,
  // only when the browser next updates the hover (on a timer, up to ~100 ms): a press
  // before that only shows the button, as a tap does. Kept so: the user saw the row come,
  // not its button, and a press that quick is the rest of the last gesture, not an aim.
  const unseen = useRef(false);
  const hovered = useRef(false);
  const byMouse = useRef(false);
  // TodoMVC's layout runs a long title under the delete button: a press on its text there
  // may be the first of a double-click meant to edit it ("Double-click to edit a todo"),
  // and deleting at once would lose the row. Such a click deletes once the double-click
  // time passed; a second click within it edits instead.
  const onText = useRef(false);
  const pendingDelete = useRef<{ timer: number; fire(): void } | null>(null);
  // Stored: the row leaves at the next render, and a click before it (a double-click's
  // second) would send a second delete, refused with an alert.
  const deleted = useRef(false);
  const completed = useOptimisticToggle(todo.completed, (value) =>
    commands.setCompleted(todo.id, value),
  );

  // The row leaving the screen meanwhile (another filter picked): the delete is not lost.
  useEffect(() => () => pendingDelete.current?.fire(), []);

  // The row leaving with its editor open and changed, unsaved: it was deleted by another
  // page, or its list unshared (App keeps an edited row through a filter or a move, and a click elsewhere blurs
  // the editor, which saves). What was typed would go unseen: handed up to be shown.
  const unsaved = useRef({ editing, todo, draft });
  unsaved.current = { editing, todo, draft };
  const lost = useRef(onDraftLost);
  lost.current = onDraftLost;
  useEffect(
    () => () => {
      const { editing, todo, draft } = unsaved.current;
      if (editing && !finished.current && normalizeTitle(draft) !== todo.title) lost.current?.(todo, draft);
    },
    [],
  );

  useEffect(() => {
    if (editing) input.current?.focus();
    else if (refocus.current) label.current?.focus();
    refocus.current = false;
  }, [editing]);

  const startEditing = () => {
    if (readOnly) return;
    // An edit's double-click whose first click fell on the delete button over the title's
    // end and whose second beside it (the label's dblclick): the delete it left waiting
    // is no delete (it deleted the row under the open editor).
    if (pendingDelete.current !== null) {
      clearTimeout(pendingDelete.current.timer);
      pendingDelete.current = null;
    }
    finished.current = false;
    setDraft(todo.title);
    setOpened({ row: todo, at: Date.now() });
    onEdit(todo.id);
  };

  // The editor stays open until the outbox stored the change, so a failure to store it
  // (shown in the page's alert) keeps the draft for another try; what the server then
  // refuses is rolled back with a notice. A draft the user changed while another page
  // retitled the row (told in `changed`) overwrites theirs.
  const save = async () => {
    if (finished.current) return;
    finished.current = true;
    const title = normalizeTitle(draft);
    let ok = true;
    if (title === null) ok = await commands.deleteTodo(todo.id);
    else if (renames(title, opened.row.title, todo.title)) ok = await commands.renameTodo(todo.id, title);
    if (ok) {
      onEdit(null);
    } else {
      finished.current = false;
      refocus.current = false;
    }
  };

  const onEditKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    // Enter also confirms an IME composition; that one is not ours.
    if (event.nativeEvent.isComposing) return;
    if (event.key === 'Enter') {
      refocus.current = true;
      void save();
    } else if (event.key === 'Escape') {
      finished.current = true;
      refocus.current = true;
      setDraft(todo.title);
      onEdit(null);
    }
  };

  // Double-click's keyboard equivalents, for the focusable label.
  const onLabelKeyDown = (event: KeyboardEvent<HTMLLabelElement>) => {
    if (event.key === 'Enter' || event.key === 'F2') {
      event.preventDefault();
      startEditing();
    }
  };

  const remove = async () => {
    deleted.current = true;
    if (!(await commands.deleteTodo(todo.id))) deleted.current = false;
  };

  const destroy = (e: MouseEvent<HTMLButtonElement>) => {
    if (deleted.current) return;
    if (pendingDelete.current !== null) {
      // The second click of a double-click on the title's end: an edit, not a delete
      // (startEditing drops the waiting one).
      startEditing();
    } else if (e.detail > 0 && (unseen.current || (e.detail > 1 && !byMouse.current))) {
      // A press (not a key: detail 0) on the button still transparent only shows it,
      // and so does the rest of a double tap (detail 2 on): its second tap, on the
      // button its first one showed a moment before, is an edit's double-click
      // that landed there, not a delete seen. (A mouse saw it: its clicks delete.)
      unseen.current = false;
      e.currentTarget.focus();
    } else if (e.detail === 1 && onText.current) {
      const fire = () => {
        clearTimeout(timer);
        pendingDelete.current = null;
        void remove();
      };
      const timer = window.setTimeout(fire, DOUBLE_CLICK_MS);
      pendingDelete.current = { timer, fire };
    } else void remove();
  };

  const classes = [completed.checked && 'completed', editing && 'editing'].filter(Boolean);
  const changed = editing
    ? changedElsewhereNotice(opened.row, todo, draft, { openedAt: opened.at, refusals, listName })
    : null;
  const changedId = `changed-${todo.id}`;

  return (
    <li
      className={classes.join(' ') || undefined}
      data-id={todo.id}
      onPointerOver={(e) => {
        if (e.buttons === 0) hovered.current = true;
      }}
      onPointerLeave={() => (hovered.current = false)}
    >
      <div className="view">
        <input
          className="toggle"
          type="checkbox"
          checked={completed.checked}
          disabled={readOnly}
          aria-busy={completed.pending || undefined}
          aria-label={`Toggle "${isolate(todo.title)}"`}
          onChange={() => void completed.toggle()}
        />
        <label ref={label} tabIndex={0} onDoubleClick={startEditing} onKeyDown={onLabelKeyDown}>
          <bdi ref={text}>{todo.title}</bdi>
        </label>
        {!readOnly && moveTargets.length > 0 && (
          <MoveMenu title={todo.title} targets={moveTargets} onMove={(list) => onMove(todo.id, list)} />
        )}
        {!readOnly && (
          <button
            className="destroy"
            aria-label={`Delete "${isolate(todo.title)}"`}
            onPointerDown={(e) => {
              const button = e.currentTarget;
              byMouse.current = e.pointerType === 'mouse';
              unseen.current =
                getComputedStyle(button).opacity === '0' ||
                (e.pointerType !== 'touch' && !hovered.current && document.activeElement !== button);
              onText.current = text.current !== null && drawnAt(text.current, e.clientX, e.clientY);
            }}
            onClick={destroy}
          />
        )}
      </div>
      {editing && (
        <input
          ref={input}
          className="edit"
          dir="auto"
          aria-label={`Edit "${isolate(todo.title)}"`}
          aria-describedby={changed === null ? undefined : changedId}
          maxLength={MAX_TITLE_LENGTH}
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          onKeyDown={onEditKeyDown}
          onBlur={() => void save()}
        />
      )}
      {changed !== null && (
        <div id={changedId} className="error-banner changed-elsewhere" role="alert">
          <span>{changed}</span>
        </div>
      )}
    </li>
  );
}

// Windows' default double-click time (GTK's is 400 ms); as MoveMenu's SECOND_CLICK_MS.
const DOUBLE_CLICK_MS = 500;

/** Whether the text in `element` is drawn at the point (x, y) of the viewport. */
function drawnAt(element: Element, x: number, y: number): boolean {
  const range = document.createRange();
  range.selectNodeContents(element);
  return [...range.getClientRects()].some((b) => b.left <= x && x <= b.right && b.top <= y && y <= b.bottom);
}
