// User intents as mutations. The page never edits its list from their results: the
// resulting `todoChanges` events do, so every tab shows exactly what the server committed.
import {
  ClearCompletedMutation,
  CreateTodoMutation,
  DeleteTodoMutation,
  GraphQLRequestError,
  request,
  ToggleAllMutation,
  UpdateTodoMutation,
} from './api';

// The last failed command, for the page's alert. A failure must be visible: the
// connection status says nothing about a rejected title or a POST that never arrived.
// The next command that succeeds clears it, as does the user dismissing it.
let lastError: string | null = null;
const errorListeners = new Set<() => void>();

function setLastError(message: string | null): void {
  if (message === lastError) return;
  lastError = message;
  errorListeners.forEach((listener) => listener());
}

export const commandErrors = {
  getSnapshot: (): string | null => lastError,
  subscribe(listener: () => void): () => void {
    errorListeners.add(listener);
    return () => errorListeners.delete(listener);
  },
  dismiss: (): void => setLastError(null),
};

/** The server's own words when it answered, else what went wrong on the way. */
export function describeError(error: unknown): string {
  if (error instanceof GraphQLRequestError) return error.message;
  if (error instanceof DOMException && error.name === 'TimeoutError') {
    return 'the server did not answer in time';
  }
  if (error instanceof TypeError) return 'the server could not be reached';
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs one mutation. Resolves true when the server accepted it and false when it failed;
 * a failure is already reported (alert and console), so callers only decide what to keep.
 */
async function run(what: string, mutation: () => Promise<unknown>): Promise<boolean> {
  try {
    await mutation();
    setLastError(null);
    return true;
  } catch (error) {
    console.error(`${what} failed`, error);
    setLastError(`Could not ${what}: ${describeError(error)}`);
    return false;
  }
}

export function createTodo(title: string): Promise<boolean> {
  return run('add the todo', () => request(CreateTodoMutation, { title }));
}

export function renameTodo(id: string, title: string): Promise<boolean> {
  return run('rename the todo', () => request(UpdateTodoMutation, { id, input: { title } }));
}

export function setCompleted(id: string, completed: boolean): Promise<boolean> {
  return run('update the todo', () => request(UpdateTodoMutation, { id, input: { completed } }));
}

export function deleteTodo(id: string): Promise<boolean> {
  return run('delete the todo', () => request(DeleteTodoMutation, { id }));
}

export function toggleAll(completed: boolean): Promise<boolean> {
  return run('update the todos', () => request(ToggleAllMutation, { completed }));
}

export function clearCompleted(): Promise<boolean> {
  return run('clear completed todos', () => request(ClearCompletedMutation));
}
