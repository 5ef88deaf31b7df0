import type { Client, ClientOptions, ExecutionResult, Sink, SubscribePayload } from 'graphql-ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { endpoints } from './api';
import type { TodoChangesSubscription, TodoListQuery } from './gql/graphql';
import { backoffMs, PONG_TIMEOUT_MS, startSync, type SyncDeps, type TodoSync } from './sync';

// Upper bounds of backoffMs, so fake time can always be advanced past a retry.
const backoffCap = (attempt: number) => Math.min(5_000, 250 * 2 ** attempt);
const MAX_BACKOFF_MS = 5_000;

describe('endpoints', () => {
  it('derives same-origin http and ws URLs', () => {
    const location = new URL('http://127.0.0.1:8000/#/active') as unknown as Location;
    expect(endpoints(location)).toEqual({
      http: 'http://127.0.0.1:8000/graphql',
      ws: 'ws://127.0.0.1:8000/graphql',
    });
  });

  it('uses wss behind https', () => {
    const location = new URL('https://todos.example/') as unknown as Location;
    expect(endpoints(location).ws).toBe('wss://todos.example/graphql');
  });
});

describe('backoffMs', () => {
  it('grows exponentially and is capped', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const base = Math.min(5_000, 250 * 2 ** attempt);
      const wait = backoffMs(attempt);
      expect(wait).toBeGreaterThanOrEqual(base / 2);
      expect(wait).toBeLessThanOrEqual(base);
    }
  });
});

// A fake graphql-ws client: records subscriptions and lets a test drive their sinks and
// the socket events, as the real client would after (re)connecting.
interface FakeSubscription {
  payload: SubscribePayload;
  sink: Sink<ExecutionResult<TodoChangesSubscription>>;
  disposed: boolean;
}

function fakeClient() {
  const subscriptions: FakeSubscription[] = [];
  let options: ClientOptions | undefined;
  const socket = { readyState: 1, close: vi.fn() };
  const createClient: SyncDeps['createClient'] = (opts) => {
    options = opts;
    return {
      subscribe: ((payload: SubscribePayload, sink: FakeSubscription['sink']) => {
        const subscription = { payload, sink, disposed: false };
        subscriptions.push(subscription);
        return () => {
          subscription.disposed = true;
        };
      }) as Client['subscribe'],
      dispose: () => undefined,
    };
  };
  const on = () => options!.on as Required<NonNullable<ClientOptions['on']>>;
  return {
    createClient,
    subscriptions,
    socket,
    last: () => subscriptions[subscriptions.length - 1],
    connect: () => on().connected(socket, undefined, false),
    close: () => on().closed({ code: 1006 }),
    ping: () => on().ping(false, undefined),
    pong: () => on().pong(true, undefined),
  };
}

const list = (cursor: string, titles: string[] = []): TodoListQuery => ({
  todoList: {
    cursor,
    todos: titles.map((title, i) => ({ id: String(i + 1), title, completed: false })),
  },
});

const event = (cursor: string, id: string, title: string) => ({
  data: {
    todoChanges: { op: 'CREATED' as const, cursor, todo: { id, title, completed: false } },
  },
});

describe('startSync', () => {
  let syncs: TodoSync[] = [];

  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    vi.spyOn(console, 'info').mockImplementation(() => undefined);
  });

  afterEach(() => {
    syncs.forEach((sync) => sync.stop());
    syncs = [];
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  const start = (client: ReturnType<typeof fakeClient>, loadList: SyncDeps['loadList']) => {
    const sync = startSync({
      url: 'ws://test/graphql',
      createClient: client.createClient,
      loadList,
    });
    syncs.push(sync);
    return sync;
  };

  it('resumes from the last applied cursor when graphql-ws resubscribes', async () => {
    const client = fakeClient();
    const sync = start(client, async () => list('5', ['a']));
    await vi.advanceTimersByTimeAsync(0);
    expect(client.subscriptions).toHaveLength(1);
    const { payload, sink } = client.last();
    expect(payload.variables).toEqual({ after: '5' });
    sink.next(event('6', '2', 'b'));
    expect(sync.getSnapshot().state.todos.map((t) => t.title)).toEqual(['a', 'b']);
    // The same payload object is what graphql-ws re-sends after a reconnect.
    expect(payload.variables).toEqual({ after: '6' });
  });

  it('ignores callbacks of a replaced subscription', async () => {
    const client = fakeClient();
    const loadList = vi.fn(async () => list('5', ['a']));
    const sync = start(client, loadList);
    await vi.advanceTimersByTimeAsync(0);
    const first = client.last();
    first.sink.error(new Error('socket gone'));
    expect(first.disposed).toBe(true);
    await vi.advanceTimersByTimeAsync(MAX_BACKOFF_MS);
    expect(loadList).toHaveBeenCalledTimes(2);
    expect(client.subscriptions).toHaveLength(2);

    // graphql-ws still calls the old sink; none of it may touch the state or resync.
    first.sink.next(event('9', '9', 'stale'));
    first.sink.complete();
    await vi.advanceTimersByTimeAsync(MAX_BACKOFF_MS);
    expect(loadList).toHaveBeenCalledTimes(2);
    expect(sync.getSnapshot().state.todos.map((t) => t.title)).toEqual(['a']);
  });

  it('reloads the list when the cursor is rejected (BAD_USER_INPUT)', async () => {
    const client = fakeClient();
    const loadList = vi
      .fn()
      .mockResolvedValueOnce(list('5', ['a']))
      .mockResolvedValue(list('1', ['new']));
    const sync = start(client, loadList);
    await vi.advanceTimersByTimeAsync(0);
    // graphql-ws types errors as GraphQLError; over the wire they are plain objects.
    const errors = [{ message: 'unknown cursor', extensions: { code: 'BAD_USER_INPUT' } }];
    client.last().sink.next({ errors } as unknown as ExecutionResult<TodoChangesSubscription>);
    await vi.advanceTimersByTimeAsync(MAX_BACKOFF_MS);
    expect(loadList).toHaveBeenCalledTimes(2);
    expect(sync.getSnapshot().state).toEqual({
      cursor: '1',
      todos: [{ id: '1', title: 'new', completed: false }],
    });
    expect(client.last().payload.variables).toEqual({ after: '1' });
  });

  it('reloads the list when the server completes the subscription', async () => {
    const client = fakeClient();
    const loadList = vi.fn(async () => list('5'));
    start(client, loadList);
    await vi.advanceTimersByTimeAsync(0);
    client.last().sink.next(event('6', '1', 'a'));
    client.last().sink.complete();
    // After a subscription that worked, the reload is immediate.
    await vi.advanceTimersByTimeAsync(0);
    expect(loadList).toHaveBeenCalledTimes(2);
    expect(client.subscriptions).toHaveLength(2);
  });

  it('retries a failing list load with backoff, then resets the backoff', async () => {
    const client = fakeClient();
    const loadList = vi
      .fn()
      .mockRejectedValueOnce(new TypeError('offline'))
      .mockRejectedValueOnce(new DOMException('timed out', 'TimeoutError'))
      .mockResolvedValue(list('5'));
    start(client, loadList);
    await vi.advanceTimersByTimeAsync(0);
    expect(loadList).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(2 * MAX_BACKOFF_MS);
    expect(loadList).toHaveBeenCalledTimes(3);
    expect(client.subscriptions).toHaveLength(1);
    // A fresh failure after the successful load starts again from the shortest wait.
    client.last().sink.error(new Error('boom'));
    await vi.advanceTimersByTimeAsync(backoffCap(0));
    expect(loadList).toHaveBeenCalledTimes(4);
  });

  it('is live only with the socket up, the list loaded and the subscription running', async () => {
    const client = fakeClient();
    let resolveList: (data: TodoListQuery) => void = () => undefined;
    const loadList = vi.fn(() => new Promise<TodoListQuery>((resolve) => (resolveList = resolve)));
    const sync = start(client, loadList);
    const connection = () => sync.getSnapshot().connection;
    expect(connection()).toBe('connecting');
    client.connect();
    expect(connection()).toBe('connecting'); // socket up, list not loaded yet
    resolveList(list('5'));
    await vi.advanceTimersByTimeAsync(0);
    expect(connection()).toBe('live');

    client.last().sink.error(new Error('broken'));
    expect(connection()).toBe('connecting'); // reloading
    await vi.advanceTimersByTimeAsync(MAX_BACKOFF_MS);
    expect(loadList).toHaveBeenCalledTimes(2);
    resolveList(list('5'));
    await vi.advanceTimersByTimeAsync(0);
    expect(connection()).toBe('live');

    client.close();
    expect(connection()).toBe('offline');
    client.connect();
    expect(connection()).toBe('live'); // graphql-ws resubscribed on its own
  });

  it('closes a socket whose pong does not come back in time', async () => {
    const client = fakeClient();
    start(client, async () => list('5'));
    client.connect();
    client.ping();
    await vi.advanceTimersByTimeAsync(PONG_TIMEOUT_MS - 1);
    client.pong();
    await vi.advanceTimersByTimeAsync(PONG_TIMEOUT_MS);
    expect(client.socket.close).not.toHaveBeenCalled();

    client.ping();
    await vi.advanceTimersByTimeAsync(PONG_TIMEOUT_MS);
    expect(client.socket.close).toHaveBeenCalledWith(4408, 'Request Timeout');
  });
});
