// User intents as outbox edits. Each is stored in IndexedDB at once and shows on screen
// from there (overlay.ts), online or not; the outbox sends it, numbered, when it can
// (outbox.ts), and the server's events then show what it committed.
import type { Outbox } from './outbox';
import type { ListSeen } from './outboxStore';
import type { Todo } from './todos';

/**
 * The user's intents. Each resolves true once the edit is stored (it will be sent, and
 * survives a reload) and false when the browser could not store it, which is reported
 * in `errors`. What the server then makes of it comes as the outbox's verdict.
 */
export interface Commands {
  createTodo(title: string): Promise<boolean>;
  renameTodo(id: string, title: string): Promise<boolean>;
  setCompleted(id: string, completed: boolean): Promise<boolean>;
  deleteTodo(id: string): Promise<boolean>;
  /** Into another of the person's lists (AUTH=accounts); `listName` for its messages. */
  moveTodo(id: string, listId: string, listName: string): Promise<boolean>;
  toggleAll(completed: boolean): Promise<boolean>;
  clearCompleted(): Promise<boolean>;
  /**
   * The last edit the browser could not store, for the page's alert (IndexedDB refused:
   * a full disk, a private window that forbids it). The next stored edit clears it, as
   * does the user dismissing it.
   */
  errors: {
    getSnapshot(): string | null;
    subscribe(listener: () => void): () => void;
    dismiss(): void;
  };
}

export interface CommandOptions {
  /**
   * AUTH=accounts: the list on screen, read at each intent so the commands follow the
   * list switcher. A new todo joins it; "toggle all" and "clear completed" touch only its
   * rows among `shown` (and any that names no list, as open mode's rows).
   */
  listId?: () => string | undefined;
  /** The name of the list on screen, kept with each edit made there for its messages. */
  listName?: () => string | undefined;
  newId?: () => string;
}

/**
 * `shown` is every row the page may show: an edit keeps the title the user saw there, for
 * the message a rejection of it shows, though the row was moved meanwhile to another list
 * (the row being edited stays on screen: App.tsx). "Toggle all" and "clear completed" name
 * the rows of the list on screen (`listId`).
 */
export function createCommands(
  outbox: Pick<Outbox, 'add'>,
  shown: () => readonly Todo[],
  { listId = () => undefined, listName = () => undefined, newId = () => crypto.randomUUID() }: CommandOptions = {},
): Commands {
  let lastError: string | null = null;
  const listeners = new Set<() => void>();

  const setLastError = (message: string | null) => {
    if (message === lastError) return;
    lastError = message;
    listeners.forEach((listener) => listener());
  };

  const titleOf = (id: string) => shown().find((t) => t.id === id)?.title ?? '';

  const queue = async (what: string, add: () => Promise<void>): Promise<boolean> => {
    try {
      await add();
      setLastError(null);
      return true;
    } catch (error) {
      console.error(`${what} failed`, error);
      setLastError(`Could not ${what}: ${error instanceof Error ? error.message : String(error)}`);
      return false;
    }
  };

  // Only a list that is named goes into the edit (open mode's edits stay as they were).
  const list = () => {
    const id = listId();
    return id === undefined ? {} : { listId: id };
  };

  // The list on screen as the user sees it, for an edit made there: a row's only while it
  // is in it (the row being edited may have been moved to another list meanwhile).
  const seen = (row?: string): ListSeen | undefined => {
    const [id, name] = [listId(), listName()];
    if (id === undefined || name === undefined) return undefined;
    if (row !== undefined && shown().find((t) => t.id === row)?.listId !== id) return undefined;
    return { id, name };
  };

  // The rows of the list on screen.
  const listed = () => {
    const id = listId();
    return shown().filter((t) => id === undefined || t.listId === undefined || t.listId === id);
  };

  return {
    createTodo: (title) =>
      queue('add the todo', () =>
        outbox.add({ type: 'create', id: newId(), title, completed: false, ...list() }, title, seen()),
      ),
    renameTodo: (id, title) =>
      queue('rename the todo', () => outbox.add({ type: 'update', id, title }, titleOf(id), seen(id))),
    setCompleted: (id, completed) =>
      queue('update the todo', () => outbox.add({ type: 'update', id, completed }, titleOf(id), seen(id))),
    deleteTodo: (id) =>
      queue('delete the todo', () => outbox.add({ type: 'delete', id }, titleOf(id), seen(id))),
    moveTodo: (id, listId, listName) =>
      queue('move the todo', () => outbox.add({ type: 'move', id, listId, listName }, titleOf(id), seen(id))),
    // The rows on screen go with a list-wide edit: sent later (after going offline), it
    // touches those alone, not a row someone added meanwhile.
    toggleAll: (completed) =>
      queue('update the todos', () =>
        outbox.add({ type: 'toggleAll', completed, ...list(), ids: listed().map((t) => t.id) }, '', seen()),
      ),
    clearCompleted: () =>
      queue('clear completed todos', () =>
        outbox.add(
          { type: 'clearCompleted', ...list(), ids: listed().filter((t) => t.completed).map((t) => t.id) },
          '',
          seen(),
        ),
      ),
    errors: {
      getSnapshot: () => lastError,
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      dismiss: () => setLastError(null),
    },
  };
}
