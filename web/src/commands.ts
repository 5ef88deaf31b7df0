// User intents as mutations. The page never edits its list from their results: the
// resulting `todoChanges` events do, so every tab shows exactly what the server committed.
import {
  ClearCompletedMutation,
  CreateTodoMutation,
  DeleteTodoMutation,
  GraphQLRequestError,
  ToggleAllMutation,
  UpdateTodoMutation,
} from './api';
import type { TypedDocumentString } from './gql/graphql';

/** Carries one operation to the server: `request` from api.ts, or a fake in tests. */
export type Send = <TResult, TVariables>(
  document: TypedDocumentString<TResult, TVariables>,
  variables?: TVariables,
) => Promise<TResult>;

/**
 * The user's intents. Each resolves true when the server accepted it and false when it
 * failed; a failure is already reported (`errors` and the console), so callers only
 * decide what to keep.
 */
export interface Commands {
  createTodo(title: string): Promise<boolean>;
  renameTodo(id: string, title: string): Promise<boolean>;
  setCompleted(id: string, completed: boolean): Promise<boolean>;
  deleteTodo(id: string): Promise<boolean>;
  toggleAll(completed: boolean): Promise<boolean>;
  clearCompleted(): Promise<boolean>;
  /**
   * The last failed command, for the page's alert. A failure must be visible: the
   * connection status says nothing about a rejected title or a POST that never arrived.
   * The next command that succeeds clears it, as does the user dismissing it.
   */
  errors: {
    getSnapshot(): string | null;
    subscribe(listener: () => void): () => void;
    dismiss(): void;
  };
}

/** The server's own words when it answered, else what went wrong on the way. */
export function describeError(error: unknown): string {
  if (error instanceof GraphQLRequestError) return error.message;
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return 'the server did not answer in time';
  }
  if (error instanceof TypeError) return 'the server could not be reached';
  return error instanceof Error ? error.message : String(error);
}

export function createCommands(send: Send): Commands {
  let lastError: string | null = null;
  const listeners = new Set<() => void>();

  const setLastError = (message: string | null) => {
    if (message === lastError) return;
    lastError = message;
    listeners.forEach((listener) => listener());
  };

  const run = async (what: string, mutation: () => Promise<unknown>): Promise<boolean> => {
    try {
      await mutation();
      setLastError(null);
      return true;
    } catch (error) {
      console.error(`${what} failed`, error);
      setLastError(`Could not ${what}: ${describeError(error)}`);
      return false;
    }
  };

  return {
    createTodo: (title) => run('add the todo', () => send(CreateTodoMutation, { title })),
    renameTodo: (id, title) =>
      run('rename the todo', () => send(UpdateTodoMutation, { id, input: { title } })),
    setCompleted: (id, completed) =>
      run('update the todo', () => send(UpdateTodoMutation, { id, input: { completed } })),
    deleteTodo: (id) => run('delete the todo', () => send(DeleteTodoMutation, { id })),
    toggleAll: (completed) => run('update the todos', () => send(ToggleAllMutation, { completed })),
    clearCompleted: () => run('clear completed todos', () => send(ClearCompletedMutation)),
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
