// User intents as mutations. The page never edits its list from their results: the
// resulting `todoChanges` events do, so every tab shows exactly what the server committed.
import {
  ClearCompletedMutation,
  CreateTodoMutation,
  DeleteTodoMutation,
  request,
  ToggleAllMutation,
  UpdateTodoMutation,
} from './api';

// A failed mutation (server down, validation error) changes nothing on the page; the
// connection status already tells the user why, so a console record is enough.
function report(what: string): (error: unknown) => void {
  return (error) => console.error(`${what} failed`, error);
}

export function createTodo(title: string): void {
  request(CreateTodoMutation, { title }).catch(report('createTodo'));
}

export function renameTodo(id: string, title: string): void {
  request(UpdateTodoMutation, { id, input: { title } }).catch(report('updateTodo'));
}

export function setCompleted(id: string, completed: boolean): void {
  request(UpdateTodoMutation, { id, input: { completed } }).catch(report('updateTodo'));
}

export function deleteTodo(id: string): void {
  request(DeleteTodoMutation, { id }).catch(report('deleteTodo'));
}

export function toggleAll(completed: boolean): void {
  request(ToggleAllMutation, { completed }).catch(report('toggleAll'));
}

export function clearCompleted(): void {
  request(ClearCompletedMutation).catch(report('clearCompleted'));
}
