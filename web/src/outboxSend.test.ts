import { describe, expect, it, vi } from 'vitest';
import { CreateTodoMutation, MoveTodoMutation, ToggleAllMutation } from './api';
import type { Entry } from './outboxStore';
import { operationOf, verdictOf } from './outboxSend';

const entry: Entry = {
  seq: 7,
  op: { type: 'create', id: 'c', title: 'eggs', completed: false },
  label: 'eggs',
  queuedAt: 0,
};

describe('operationOf', () => {
  it('sends a create under the id the client made, and an update with only its field', () => {
    expect(operationOf(entry.op)).toEqual({
      query: CreateTodoMutation.toString(),
      variables: { id: 'c', title: 'eggs' },
    });
    expect(operationOf({ type: 'update', id: 'c', completed: true }).variables).toEqual({
      id: 'c',
      input: { completed: true },
    });
  });

  it('sends a move as moveTodo with the row and the list it goes to, and nothing else', () => {
    expect(operationOf({ type: 'move', id: 'c', listId: 'L', listName: 'work' })).toEqual({
      query: MoveTodoMutation.toString(),
      variables: { id: 'c', listId: 'L' },
    });
  });

  it('names the list of an edit that has one (AUTH=accounts), and no list otherwise', () => {
    const create = { type: 'create', id: 'c', title: 'eggs', completed: false, listId: 'L' } as const;
    expect(operationOf(create).variables).toEqual({ id: 'c', title: 'eggs', listId: 'L' });
    expect(operationOf({ type: 'toggleAll', completed: true, listId: 'L' })).toEqual({
      query: ToggleAllMutation.toString(),
      variables: { completed: true, listId: 'L' },
    });
    expect(operationOf({ type: 'clearCompleted', listId: 'L' }).variables).toEqual({ listId: 'L' });
    expect(operationOf({ type: 'clearCompleted' }).variables).toEqual({});
  });

  it('names the rows of a list-wide edit that has them, and none for one stored before ids', () => {
    expect(operationOf({ type: 'toggleAll', completed: false, ids: ['a', 'b'] }).variables).toEqual({
      completed: false,
      ids: ['a', 'b'],
    });
    expect(operationOf({ type: 'clearCompleted', listId: 'L', ids: [] }).variables).toEqual({ listId: 'L', ids: [] });
  });
});

describe('verdictOf', () => {
  it('reads an applied verdict and its cursor', () => {
    const reply = { data: { createTodo: { id: 'c' } }, extensions: { cursor: '42', mutation: { verdict: 'APPLIED' } } };
    expect(verdictOf(entry, 200, reply)).toEqual({ seq: 7, verdict: 'APPLIED', cursor: '42' });
  });

  it('reads a rejection with its code and reason', () => {
    const reply = {
      data: null,
      errors: [{ message: 'title must not be blank', extensions: { code: 'BAD_USER_INPUT' } }],
      extensions: { cursor: '40', mutation: { verdict: 'REJECTED' } },
    };
    expect(verdictOf(entry, 200, reply)).toEqual({
      seq: 7,
      verdict: 'REJECTED',
      cursor: '40',
      code: 'BAD_USER_INPUT',
      message: 'title must not be blank',
    });
  });

  it('takes no verdict from an answer about this attempt only: the edit is sent again', () => {
    const error = (code: string) => ({ errors: [{ message: 'x', extensions: { code } }] });
    expect(() => verdictOf(entry, 503, error('DATABASE_UNAVAILABLE'))).toThrow();
    expect(() => verdictOf(entry, 401, error('UNAUTHENTICATED'))).toThrow();
    expect(() => verdictOf(entry, 429, error('TOO_MANY_REQUESTS'))).toThrow();
    expect(() => verdictOf(entry, 502, {})).toThrow();
  });

  it('settles a refusal made before the edit was numbered as rejected, with nothing to wait for', () => {
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const refused = { errors: [{ message: 'too long', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }] };
    expect(verdictOf(entry, 400, refused)).toEqual({
      seq: 7,
      verdict: 'REJECTED',
      cursor: null,
      code: 'GRAPHQL_VALIDATION_FAILED',
      message: 'too long',
    });
    spy.mockRestore();
  });
});
