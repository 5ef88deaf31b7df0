// What the page shows: the server's list with the outbox's edits applied on top, in
// sequence order. Pure, so the merge rules are unit-tested (overlay.test.ts).
import type { Entry, Op } from './outboxStore';
import { isNewer, type Todo } from './todos';

/**
 * One edit over a list. An update sets only its own field, so a pending rename keeps a
 * completion the server made meanwhile (and the other way round), and a move only the
 * row's list; an edit of a row that is gone changes nothing (a delete wins); a create
 * the list already holds (its verdict came, its event too) is not added twice.
 */
export function applyOp(todos: readonly Todo[], op: Op): readonly Todo[] {
  switch (op.type) {
    case 'create':
      if (todos.some((t) => t.id === op.id)) return todos;
      return [
        ...todos,
        {
          id: op.id,
          title: op.title,
          completed: op.completed,
          ...(op.listId === undefined ? {} : { listId: op.listId }),
        },
      ];
    case 'update':
      return change(todos, op.id, 'title' in op ? { title: op.title } : { completed: op.completed });
    // The row takes its new list (so it leaves the one on screen); its fields stay as
    // the server has them.
    case 'move':
      return change(todos, op.id, { listId: op.listId });
    case 'delete':
      return todos.filter((t) => t.id !== op.id);
    case 'toggleAll':
      return todos.map((t) =>
        t.completed === op.completed || !touches(op, t) ? t : { ...t, completed: op.completed },
      );
    case 'clearCompleted':
      return todos.filter((t) => !t.completed || !touches(op, t));
  }
}

// One row's fields set, the others kept; a row that is gone stays gone.
const change = (todos: readonly Todo[], id: string, fields: Partial<Todo>): readonly Todo[] =>
  todos.map((t) => (t.id === id ? { ...t, ...fields } : t));

// A list-wide edit touches the rows it names, of the list it names; with no ids, every
// row of that list (or every row when it names no list either), as the server does.
const touches = (op: { listId?: string; ids?: string[] }, todo: Todo) =>
  (op.listId === undefined || todo.listId === op.listId) &&
  (op.ids === undefined || op.ids.includes(todo.id));

export function overlay(todos: readonly Todo[], entries: readonly Entry[]): readonly Todo[] {
  return entries.reduce((shown, entry) => applyOp(shown, entry.op), todos);
}

/**
 * Whether a list at `listCursor` already shows what a verdict at `cursor` did: then its
 * edit leaves the overlay. The server's cursor is the mutation's own journal entry, or the
 * row's newest one for a write that changed nothing, so the stream always gets there.
 */
export function reached(cursor: string | null, listCursor: string | null): boolean {
  if (cursor === null) return true;
  return listCursor !== null && !isNewer(cursor, listCursor);
}
