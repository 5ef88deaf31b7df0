import type { Client, ClientOptions, ExecutionResult, Sink, SubscribePayload } from 'graphql-ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { endpoints } from './api';
import type { TodoChangesSubscription, TodoListQuery } from './gql/graphql';
import { backoffMs, PONG_TIMEOUT_MS, startSync, type SyncDeps, type TodoSync } from './sync';

// The upper bound of backoffMs, so fake time can always be advanced past a retry.
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
  let created = 0;
  const socket = { readyState: 1, close: vi.fn() };
  const createClient: SyncDeps['createClient'] = (opts) => {
    options = opts;
    created++;
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
    created: () => created,
    last: () => subscriptions[subscriptions.length - 1],
    connect: () => on().connected(socket, undefined, false),
    close: () => on().closed({ code: 1006 }),
    giveUp: () => options!.onNonLazyError!({ code: 4500 }),
    ping: () => on().ping(false, undefined),
    pong: () => on().pong(true, undefined),
  };
}

const list = (cursor: string, titles: string[] = []): TodoListQuery => ({
  todoList: {
    cursor,
    todos: titles.map((title, i) => ({ id: String(i + 1), title, completed: false, listId: 'l' })),
  },
});

const event = (cursor: string, id: string, title: string) => ({
  data: {
    todoChanges: { op: 'CREATED' as const, removed: false, cursor, todo: { id, title, completed: false, listId: 'l' } },
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
  const titles = (sync: TodoSync) => sync.getSnapshot().list.todos.map((t) => t.title);

  it('connects, loads the list, then subscribes from its cursor', async () => {
    const client = fakeClient();
    const loadList = vi.fn(async () => list('5', ['a']));
    const sync = start(client, loadList);
    expect(sync.getSnapshot().phase).toBe('connecting');
    expect(loadList).not.toHaveBeenCalled();
    client.connect();
    expect(sync.getSnapshot().phase).toBe('loading');
    await vi.advanceTimersByTimeAsync(0);
    expect(sync.getSnapshot().phase).toBe('live');
    expect(client.subscriptions).toHaveLength(1);
    expect(client.last().payload.variables).toEqual({ after: '5' });
    client.last().sink.next(event('6', '2', 'b'));
    expect(titles(sync)).toEqual(['a', 'b']);
  });

  it('notifies listeners of every change of state', async () => {
    const client = fakeClient();
    const sync = start(client, async () => list('5'));
    const seen: string[] = [];
    sync.subscribe(() => seen.push(sync.getSnapshot().phase));
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    client.close();
    expect(seen).toEqual(['loading', 'live', 'offline']);
  });

  it('drops the subscription when the socket closes and resumes after the last cursor', async () => {
    const client = fakeClient();
    const loadList = vi.fn(async () => list('5', ['a']));
    const sync = start(client, loadList);
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    const first = client.last();
    first.sink.next(event('6', '2', 'b'));
    client.close();
    expect(first.disposed).toBe(true);
    expect(sync.getSnapshot().phase).toBe('offline');
    // graphql-ws still calls the old sink; none of it may touch the state.
    first.sink.next(event('9', '9', 'stale'));
    first.sink.complete();

    client.connect();
    expect(sync.getSnapshot().phase).toBe('live');
    expect(client.subscriptions).toHaveLength(2);
    expect(client.last().payload.variables).toEqual({ after: '6' });
    expect(loadList).toHaveBeenCalledTimes(1);
    expect(titles(sync)).toEqual(['a', 'b']);
  });

  it.each(['BAD_USER_INPUT', 'CURSOR_EXPIRED'])(
    'reloads the list when the server refuses the cursor with %s',
    async (code) => {
      const client = fakeClient();
      const loadList = vi
        .fn()
        .mockResolvedValueOnce(list('5', ['a']))
        .mockResolvedValue(list('1', ['new']));
      const sync = start(client, loadList);
      client.connect();
      await vi.advanceTimersByTimeAsync(0);
      const errors = [{ message: 'unknown cursor', extensions: { code } }];
      client.last().sink.next({ errors } as unknown as ExecutionResult<TodoChangesSubscription>);
      expect(sync.getSnapshot().phase).toBe('resyncing');
      await vi.advanceTimersByTimeAsync(MAX_BACKOFF_MS);
      expect(loadList).toHaveBeenCalledTimes(2);
      expect(sync.getSnapshot()).toMatchObject({
        phase: 'live',
        list: { cursor: '1', todos: [{ id: '1', title: 'new', completed: false }] },
      });
      expect(client.last().payload.variables).toEqual({ after: '1' });
      expect(console.warn).not.toHaveBeenCalled();
    },
  );

  it('reloads the list at once when a subscription that worked is completed', async () => {
    const client = fakeClient();
    const loadList = vi.fn(async () => list('5'));
    start(client, loadList);
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    client.last().sink.next(event('6', '1', 'a'));
    client.last().sink.complete();
    await vi.advanceTimersByTimeAsync(0);
    expect(loadList).toHaveBeenCalledTimes(2);
    expect(client.subscriptions).toHaveLength(2);
  });

  it('retries a failing list load with backoff', async () => {
    const client = fakeClient();
    const loadList = vi
      .fn()
      .mockRejectedValueOnce(new TypeError('offline'))
      .mockRejectedValueOnce(new DOMException('timed out', 'TimeoutError'))
      .mockResolvedValue(list('5'));
    const sync = start(client, loadList);
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    expect(loadList).toHaveBeenCalledTimes(1);
    expect(sync.getSnapshot().phase).toBe('loading');
    await vi.advanceTimersByTimeAsync(2 * MAX_BACKOFF_MS);
    expect(loadList).toHaveBeenCalledTimes(3);
    expect(sync.getSnapshot().phase).toBe('live');
  });

  it('opens a new client when graphql-ws gives up on its socket', async () => {
    const client = fakeClient();
    const sync = start(client, async () => list('5'));
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    client.close();
    client.giveUp();
    expect(client.created()).toBe(1);
    await vi.advanceTimersByTimeAsync(MAX_BACKOFF_MS);
    expect(client.created()).toBe(2);
    client.connect();
    expect(sync.getSnapshot().phase).toBe('live');
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

  it('does nothing more once stopped', async () => {
    const client = fakeClient();
    const loadList = vi.fn(async () => list('5'));
    const sync = start(client, loadList);
    client.connect();
    await vi.advanceTimersByTimeAsync(0);
    const subscription = client.last();
    sync.stop();
    expect(subscription.disposed).toBe(true);
    client.close();
    expect(sync.getSnapshot().phase).toBe('live');
  });
});
