import { describe, expect, it, vi } from 'vitest';
import { CreateTodoMutation } from './api';
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
