import { useEffect, useRef, useState, useSyncExternalStore, type KeyboardEvent } from 'react';
import type { Commands } from './commands';
import { refusalsOf } from './editing';
import type { Phase } from './machine';
import { lostDraftNotice, type ListFate, type Outbox } from './outbox';
import { OutboxStatus } from './OutboxStatus';
import { useOptimisticToggle } from './optimistic';
import { todosOf, type TodoList } from './lists';
import type { TodoSync } from './sync';
import { TodoItem } from './TodoItem';
import {
  countTodos,
  filterFromHash,
  MAX_TITLE_LENGTH,
  normalizeTitle,
  pluralize,
  visibleTodos,
  type Filter,
  type Todo,
} from './todos';

const FILTERS: readonly { filter: Filter; href: string; label: string }[] = [
  { filter: 'all', href: '#/', label: 'All' },
  { filter: 'active', href: '#/active', label: 'Active' },
  { filter: 'completed', href: '#/completed', label: 'Completed' },
];

const STATUS_TEXT: Record<Phase, string> = {
  connecting: 'Connecting…',
  loading: 'Loading…',
  live: 'Live',
  // The list on screen is still right as of its cursor; a reload is routine, not an alarm.
  resyncing: 'Syncing…',
  offline: 'Reconnecting…',
};

function useHashFilter(): Filter {
  const [filter, setFilter] = useState(() => filterFromHash(window.location.hash));
  useEffect(() => {
    const onHashChange = () => setFilter(filterFromHash(window.location.hash));
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, []);
  return filter;
}

interface Props {
  sync: TodoSync;
  commands: Commands;
  outbox: Outbox;
  /** AUTH=accounts: the one list shown (People.tsx); open mode shows every todo. */
  listId?: string;
  /** A viewer's list: no inputs, checkboxes disabled. */
  readOnly?: boolean;
  /** The person's other lists they may write in: each row's move menu offers them. */
  moveTargets?: readonly TodoList[];
  /** What became of the person's lists, for the outbox's notices (AUTH=accounts). */
  listFate?: ListFate;
}

export function App({
  sync,
  commands,
  outbox,
  listId,
  readOnly = false,
  moveTargets = [],
  listFate,
}: Props) {
  const { list: synced, phase } = useSyncExternalStore(sync.subscribe, sync.getSnapshot);
  const [editingId, setEditingId] = useState<string | null>(null);
  const list = listId === undefined ? synced : { ...synced, todos: todosOf(synced.todos, listId) };
  // The rows on screen: the list's, and the one being edited though another page moved it
  // to another list (as a filter that no longer shows it keeps it), so the draft stays.
  const rows =
    listId === undefined || editingId === null
      ? list.todos
      : synced.todos.filter((t) => t.listId === listId || t.id === editingId);
  const error = useSyncExternalStore(commands.errors.subscribe, commands.errors.getSnapshot);
  // The draft of an editor whose row left (deleted, or its list unshared), until dismissed.
  // Told at each render: the lists that say which may be read after the row left.
  const [lostDraft, setLostDraft] = useState<{ todo: Todo; draft: string } | null>(null);
  // The edited row's refused edits: its editor tells them as the user's, not another page's.
  const outboxState = useSyncExternalStore(outbox.subscribe, outbox.getSnapshot);
  const refusals = editingId === null ? [] : refusalsOf(outboxState, editingId);
  const listName = (id: string) => moveTargets.find((l) => l.id === id)?.name;
  const filter = useHashFilter();
  const newTodo = useRef<HTMLInputElement>(null);
  // A repeated Enter on the same text while the first is in flight would send the same
  // thing twice. Different texts may be sent back to back.
  const creating = useRef(new Set<string>());
  const counts = countTodos(list.todos);
  // Checked when every todo is completed; so unchecked once "Clear completed" empties the list.
  const allCompleted = useOptimisticToggle(
    counts.total > 0 && counts.active === 0,
    commands.toggleAll,
  );

  // Another tab deleted the todo being edited: its editor is gone, so end editing (a
  // re-created id must not reopen it) and put focus somewhere useful instead of <body>.
  const editedGone = editingId !== null && !rows.some((t) => t.id === editingId);
  useEffect(() => {
    if (!editedGone) return;
    setEditingId(null);
    if (document.activeElement === document.body) newTodo.current?.focus();
  }, [editedGone]);

  // A row that leaves while the keyboard's focus is in it (its menu open, its button
  // focused; deleted or moved by another page) takes the focus with it, and no blur says
  // so: focus goes on to the new-todo field rather than to <body>. Not after a pointer's
  // focus: a tap on a phone would open its keyboard.
  const focusInList = useRef(false);
  useEffect(() => {
    if (focusInList.current && document.activeElement === document.body) {
      focusInList.current = false;
      newTodo.current?.focus();
    }
  }, [rows]);

  // The moved row leaves this list at once, and its menu button with it: focus goes on to
  // the new-todo field rather than to <body>.
  const move = async (id: string, to: TodoList) => {
    await commands.moveTodo(id, to.id, to.name);
    if (document.activeElement === document.body) newTodo.current?.focus();
  };

  const onNewTodoKeyDown = async (event: KeyboardEvent<HTMLInputElement>) => {
    // Enter also confirms an IME composition; that one is not ours.
    if (event.key !== 'Enter' || event.nativeEvent.isComposing) return;
    const input = event.currentTarget;
    const typed = input.value;
    const title = normalizeTitle(typed);
    if (title === null || creating.current.has(typed)) return;
    creating.current.add(typed);
    const ok = await commands.createTodo(title);
    creating.current.delete(typed);
    // Cleared only once the outbox has stored the todo (if the browser cannot store it,
    // the text stays for another try), and only if the user has not typed on meanwhile.
    if (ok && input.value === typed) input.value = '';
  };

  return (
    <>
      <section className="todoapp" data-readonly={readOnly || undefined}>
        <header className="header">
          <h1>todos</h1>
          {!readOnly && (
            <>
              <label htmlFor="new-todo" className="visually-hidden">
                New todo
              </label>
              <input
                ref={newTodo}
                id="new-todo"
                className="new-todo"
                dir="auto"
                placeholder="What needs to be done?"
                autoFocus
                maxLength={MAX_TITLE_LENGTH}
                onKeyDown={(e) => void onNewTodoKeyDown(e)}
              />
            </>
          )}
        </header>
        <OutboxStatus outbox={outbox} listFate={listFate} />
        {error !== null && (
          <div className="error-banner" role="alert">
            <span>{error}</span>
            <button
              type="button"
              className="error-dismiss"
              aria-label="Dismiss"
              // Keep focus where it is: blurring an open editor would save it again.
              onMouseDown={(e) => e.preventDefault()}
              onClick={commands.errors.dismiss}
            >
              ×
            </button>
          </div>
        )}
        {lostDraft !== null && (
          <div className="error-banner lost-draft" role="alert">
            <span>
              {lostDraftNotice(
                lostDraft.todo.title,
                lostDraft.draft,
                (lostDraft.todo.listId === undefined ? undefined : listFate?.(lostDraft.todo.listId)) ??
                  (list.outOfSight?.has(lostDraft.todo.id) ? 'moved' : undefined),
              )}
            </span>
            <button
              type="button"
              className="error-dismiss"
              aria-label="Dismiss"
              onClick={() => setLostDraft(null)}
            >
              ×
            </button>
          </div>
        )}
        {/* The TodoMVC template hides, rather than removes, what an empty list doesn't use. */}
        <section className="main" hidden={rows.length === 0}>
          <input
            id="toggle-all"
            className="toggle-all"
            type="checkbox"
            checked={allCompleted.checked}
            disabled={readOnly}
            aria-busy={allCompleted.pending || undefined}
            onChange={() => void allCompleted.toggle()}
          />
          <label htmlFor="toggle-all">Mark all as complete</label>
          <ul
            className="todo-list"
            onFocus={(e) => (focusInList.current = e.target.matches(':focus-visible'))}
            onBlur={(e) => (focusInList.current = e.currentTarget.contains(e.relatedTarget))}
          >
            {visibleTodos(rows, filter, editingId).map((todo) => (
              <TodoItem
                key={todo.id}
                todo={todo}
                editing={todo.id === editingId}
                onEdit={setEditingId}
                commands={commands}
                readOnly={readOnly}
                moveTargets={moveTargets}
                onMove={(id, to) => void move(id, to)}
                onDraftLost={(todo, draft) => setLostDraft({ todo, draft })}
                refusals={todo.id === editingId ? refusals : undefined}
                listName={listName}
              />
            ))}
          </ul>
        </section>
        <footer className="footer" hidden={counts.total === 0}>
          <span className="todo-count">
            <strong>{counts.active}</strong> {pluralize(counts.active, 'item')} left
          </span>
          <ul className="filters">
            {FILTERS.map((f) => (
              <li key={f.filter}>
                <a href={f.href} className={f.filter === filter ? 'selected' : undefined}>
                  {f.label}
                </a>
              </li>
            ))}
          </ul>
          <button
            className="clear-completed"
            hidden={counts.completed === 0 || readOnly}
            onClick={() => void commands.clearCompleted()}
          >
            Clear completed
          </button>
        </footer>
      </section>
      <footer className="info">
        <div className="connection-status" data-state={phase} role="status">
          {STATUS_TEXT[phase]}
        </div>
        <p>Double-click to edit a todo</p>
        <p>
          Part of TodoMVC · <a href="/graphql">GraphiQL</a>
        </p>
      </footer>
    </>
  );
}
