import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ClearCompletedMutation,
  GraphQLRequestError,
  ToggleAllMutation,
  UpdateTodoMutation,
} from './api';
import { createCommands, describeError, type Send } from './commands';

// A fake transport that records what it was asked to send and answers as told.
function fakeSend(answer: () => Promise<unknown> = async () => ({})) {
  const sent: { query: string; variables: unknown }[] = [];
  const send = ((document, variables) => {
    sent.push({ query: document.toString(), variables });
    return answer();
  }) as Send;
  return { send, sent };
}

describe('describeError', () => {
  it('gives the server its own words, else says what went wrong on the way', () => {
    expect(describeError(new GraphQLRequestError([{ message: 'title too long' }]))).toBe(
      'title too long',
    );
    expect(describeError(new DOMException('x', 'TimeoutError'))).toBe(
      'the server did not answer in time',
    );
    expect(describeError(new TypeError('Failed to fetch'))).toBe('the server could not be reached');
    expect(describeError(new Error('HTTP 502'))).toBe('HTTP 502');
    expect(describeError('odd')).toBe('odd');
  });
});

describe('createCommands', () => {
  beforeEach(() => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('sends each intent as its mutation with its variables', async () => {
    const { send, sent } = fakeSend();
    const commands = createCommands(send);
    await commands.setCompleted('3', true);
    await commands.toggleAll(false);
    await commands.clearCompleted();
    expect(sent).toEqual([
      { query: UpdateTodoMutation.toString(), variables: { id: '3', input: { completed: true } } },
      { query: ToggleAllMutation.toString(), variables: { completed: false } },
      { query: ClearCompletedMutation.toString(), variables: undefined },
    ]);
  });

  it('resolves true on success and false on failure, keeping the failure for the alert', async () => {
    let fail = true;
    const { send } = fakeSend(async () => {
      if (fail) throw new GraphQLRequestError([{ message: 'nope' }]);
      return {};
    });
    const commands = createCommands(send);
    const changes = vi.fn();
    commands.errors.subscribe(changes);

    expect(await commands.renameTodo('1', 'x')).toBe(false);
    expect(commands.errors.getSnapshot()).toBe('Could not rename the todo: nope');
    expect(changes).toHaveBeenCalledTimes(1);

    fail = false;
    expect(await commands.createTodo('y')).toBe(true);
    expect(commands.errors.getSnapshot()).toBeNull();
    expect(changes).toHaveBeenCalledTimes(2);
  });

  it('clears the alert when dismissed, and only notifies on a change', async () => {
    const { send } = fakeSend(async () => {
      throw new TypeError('Failed to fetch');
    });
    const commands = createCommands(send);
    const changes = vi.fn();
    const unsubscribe = commands.errors.subscribe(changes);
    await commands.deleteTodo('1');
    await commands.deleteTodo('1');
    expect(commands.errors.getSnapshot()).toBe(
      'Could not delete the todo: the server could not be reached',
    );
    expect(changes).toHaveBeenCalledTimes(1);
    commands.errors.dismiss();
    expect(commands.errors.getSnapshot()).toBeNull();
    unsubscribe();
    await commands.deleteTodo('1');
    expect(changes).toHaveBeenCalledTimes(2);
  });

  it('keeps the errors of separate command sets apart', async () => {
    const failing = createCommands(fakeSend(async () => Promise.reject(new Error('x'))).send);
    const fine = createCommands(fakeSend().send);
    await failing.clearCompleted();
    expect(failing.errors.getSnapshot()).not.toBeNull();
    expect(fine.errors.getSnapshot()).toBeNull();
  });
});
