// Pure state logic of the TodoMVC page: no DOM, no network, so it is unit-testable.
import type { TodoChangesSubscription, TodoFieldsFragment } from './gql/graphql';

/**
 * A todo as the page keeps it: the `TodoFields` fragment of api.ts. Its `listId` matters
 * with AUTH=accounts only, where the page shows one list at a time (People.tsx); it is
 * absent on a row the outbox adds to the default list, whose id only the server knows.
 */
export type Todo = Omit<TodoFieldsFragment, 'listId'> & { listId?: TodoFieldsFragment['listId'] };

/** One `todoChanges` event. */
export type TodoChange = TodoChangesSubscription['todoChanges'];

/** What the page shows: the server's list as of `cursor` (null before the first load). */
export interface TodoState {
  todos: readonly Todo[];
  cursor: string | null;
  /**
   * The rows that left because the person no longer sees them (moved into a list they are
   * not a member of: `removed` on a DELETED), not deleted; by id, until one comes back.
   */
  outOfSight?: ReadonlySet<string>;
}

/** The server rejects longer titles; the build reads the limit from the schema (vite.config.ts). */
export const MAX_TITLE_LENGTH: number = __MAX_TITLE_LENGTH__;

export type Filter = 'all' | 'active' | 'completed';

export const emptyState: TodoState = { todos: [], cursor: null };

/** The result of a `todoList` query replaces everything: it is a consistent snapshot. */
export function loadSnapshot(todos: readonly Todo[], cursor: string): TodoState {
  return { todos: todos.map(pickTodo), cursor };
}

/**
 * Cursors are decimal strings of an increasing integer position. They may exceed
 * Number.MAX_SAFE_INTEGER, hence BigInt. A malformed cursor is never "newer".
 */
export function isNewer(cursor: string, than: string | null): boolean {
  if (!/^\d+$/.test(cursor)) return false;
  if (than === null || !/^\d+$/.test(than)) return true;
  return BigInt(cursor) > BigInt(than);
}

/**
 * Applies one subscription event. Replays after a reconnect may repeat events, so an
 * event not newer than the last applied one is ignored, and upserts/deletes are keyed by
 * id: applying the same event twice leaves the state unchanged (same object).
 */
export function applyChange(state: TodoState, change: TodoChange): TodoState {
  if (!isNewer(change.cursor, state.cursor)) return state;
  const todo = pickTodo(change.todo);
  const index = state.todos.findIndex((t) => t.id === todo.id);
  let todos: readonly Todo[];
  if (change.op === 'DELETED') {
    todos = index === -1 ? state.todos : state.todos.filter((t) => t.id !== todo.id);
  } else if (index === -1) {
    todos = [...state.todos, todo];
  } else {
    todos = state.todos.map((t, i) => (i === index ? todo : t));
  }
  const outOfSight = new Set(state.outOfSight);
  if (change.op === 'DELETED' && change.removed) outOfSight.add(todo.id);
  else outOfSight.delete(todo.id);
  return outOfSight.size === 0 ? { todos, cursor: change.cursor } : { todos, cursor: change.cursor, outOfSight };
}

export function applyChanges(state: TodoState, changes: readonly TodoChange[]): TodoState {
  return changes.reduce(applyChange, state);
}

/** Maps a location hash (`#/`, `#/active`, `#/completed`) to a filter. */
export function filterFromHash(hash: string): Filter {
  switch (hash.replace(/^#\/?/, '').replace(/\/$/, '')) {
    case 'active':
      return 'active';
    case 'completed':
      return 'completed';
    default:
      return 'all';
  }
}

/**
 * The todos a filter shows. `keepId` (the row being edited) stays listed even when it no
 * longer matches, e.g. another tab completed it under `#/active`: hiding it would drop the
 * user's draft and focus mid-edit. It leaves the list once editing ends.
 */
export function visibleTodos(
  todos: readonly Todo[],
  filter: Filter,
  keepId: string | null = null,
): readonly Todo[] {
  switch (filter) {
    case 'active':
      return todos.filter((t) => !t.completed || t.id === keepId);
    case 'completed':
      return todos.filter((t) => t.completed || t.id === keepId);
    default:
      return todos;
  }
}

export interface Counts {
  total: number;
  active: number;
  completed: number;
}

export function countTodos(todos: readonly Todo[]): Counts {
  const completed = todos.filter((t) => t.completed).length;
  return { total: todos.length, active: todos.length - completed, completed };
}

/** "item" or "items", as the TodoMVC spec's `.todo-count` wants ("0 items", "1 item"). */
export function pluralize(count: number, word: string): string {
  return count === 1 ? word : `${word}s`;
}

/** Trimmed title, or null when nothing is left (an emptied edit deletes the todo). */
export function normalizeTitle(raw: string): string | null {
  const title = raw.trim();
  return title === '' ? null : title;
}

// Events carry more fields (timestamps) than the page needs; keep the state minimal so
// equal todos compare equal field by field.
function pickTodo({ id, title, completed, listId }: Todo): Todo {
  return { id, title, completed, listId };
}
