// Keeps a TodoState in step with the server: load a snapshot with `todoList`, then follow
// `todoChanges(after: cursor)` over one graphql-ws socket that reconnects forever.
import { createClient, type Client, type ClientOptions } from 'graphql-ws';
import {
  endpoints,
  hasErrorCode,
  request,
  TodoChangesSubscription,
  TodoListQuery,
  type GraphQLErrorLike,
} from './api';
import type {
  TodoChangesSubscription as TodoChangesResult,
  TodoListQuery as TodoListResult,
} from './gql/graphql';
import { applyChange, emptyState, loadSnapshot, type TodoState } from './todos';

export type ConnectionState = 'connecting' | 'live' | 'offline';

export interface SyncSnapshot {
  state: TodoState;
  connection: ConnectionState;
}

export interface TodoSync {
  getSnapshot(): SyncSnapshot;
  subscribe(listener: () => void): () => void;
  stop(): void;
}

const MAX_WAIT_MS = 5_000;
// graphql-ws pings every KEEP_ALIVE_MS but never notices a missing pong by itself: a
// server that stops answering (half-open TCP, frozen process) would look live forever.
const KEEP_ALIVE_MS = 10_000;
export const PONG_TIMEOUT_MS = 5_000;

/** What startSync talks to; the defaults are the real thing, tests pass fakes. */
export interface SyncDeps {
  url: string;
  createClient(options: ClientOptions): Pick<Client, 'subscribe' | 'dispose'>;
  loadList(): Promise<TodoListResult>;
}

/** Capped exponential backoff with jitter, so many tabs don't reconnect in lockstep. */
export function backoffMs(attempt: number): number {
  const base = Math.min(MAX_WAIT_MS, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function startSync(overrides: Partial<SyncDeps> = {}): TodoSync {
  const deps: SyncDeps = {
    url: overrides.url ?? endpoints().ws,
    createClient: overrides.createClient ?? createClient,
    loadList: overrides.loadList ?? (() => request(TodoListQuery)),
  };
  let snapshot: SyncSnapshot = { state: emptyState, connection: 'connecting' };
  const listeners = new Set<() => void>();
  let stopped = false;
  // Each subscription gets a generation; callbacks of a replaced one are ignored, since
  // graphql-ws still calls `complete` on a sink after we dispose it.
  let generation = 0;
  let dispose: (() => void) | null = null;
  // Consecutive failures since the last successful load or event: they set the backoff.
  let failures = 0;
  // Whether the current subscription has delivered an event: only a subscription that
  // worked is retried at once; one that fails right away backs off, or a server that
  // always rejects it would be hammered in a tight reload loop.
  let delivered = false;
  let resyncTimer: ReturnType<typeof setTimeout> | undefined;
  // "Live" needs all three: the socket is up, the list is loaded, and the subscription
  // that follows it is running. Anything less and the page may be silently stale.
  let socketUp = false;
  let everClosed = false;
  let socket: { readyState: number; close(code: number, reason: string): void } | null = null;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;

  const publish = (next: Partial<SyncSnapshot>) => {
    snapshot = { ...snapshot, ...next };
    listeners.forEach((listener) => listener());
  };

  const updateConnection = () => {
    const connection: ConnectionState =
      socketUp && dispose !== null ? 'live' : !socketUp && everClosed ? 'offline' : 'connecting';
    if (connection !== snapshot.connection) publish({ connection });
  };

  const client = deps.createClient({
    url: deps.url,
    lazy: false,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: (retries) => sleep(backoffMs(retries)),
    keepAlive: KEEP_ALIVE_MS,
    // The graphql-ws keep-alive recipe: every ping we send must be answered within
    // PONG_TIMEOUT_MS, else the socket is closed and graphql-ws reconnects (4408 is not
    // a fatal close code, so it retries).
    on: {
      connected: (connected) => {
        socket = connected as typeof socket;
        socketUp = true;
        updateConnection();
      },
      ping: (received) => {
        if (received) return; // the server's ping; graphql-ws answers it
        clearTimeout(pongTimer);
        pongTimer = setTimeout(() => {
          if (socket?.readyState === 1 /* OPEN */) socket.close(4408, 'Request Timeout');
        }, PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: () => {
        clearTimeout(pongTimer);
        socket = null;
        socketUp = false;
        everClosed = true;
        if (!stopped) updateConnection();
      },
    },
  });

  const follow = () => {
    dispose?.();
    const mine = ++generation;
    delivered = false;
    const payload = {
      query: TodoChangesSubscription.toString(),
      // graphql-ws re-sends this very payload after every reconnect; a getter makes the
      // re-subscription resume after the last applied event rather than the first cursor.
      get variables() {
        return { after: snapshot.state.cursor };
      },
    };
    dispose = client.subscribe<TodoChangesResult>(payload, {
      next: (result) => {
        if (mine !== generation) return;
        if (result.errors?.length) return fail(result.errors);
        if (!result.data) return;
        failures = 0;
        delivered = true;
        const state = applyChange(snapshot.state, result.data.todoChanges);
        if (state !== snapshot.state) publish({ state });
      },
      error: (error) => {
        if (mine === generation) fail(Array.isArray(error) ? error : [], error);
      },
      complete: () => {
        if (mine === generation) fail([], 'subscription completed by the server');
      },
    });
    updateConnection();
  };

  // Any broken subscription is repaired the same way: reload the snapshot and follow from
  // its cursor. For BAD_USER_INPUT (cursor unknown, e.g. database reset) that is the only
  // way; for anything else it is simply the safe way. After a subscription that worked
  // the first retry is immediate.
  const fail = (errors: readonly GraphQLErrorLike[], cause?: unknown) => {
    dispose?.();
    dispose = null;
    generation++;
    updateConnection();
    if (hasErrorCode(errors, 'BAD_USER_INPUT')) {
      console.info('todoChanges: cursor rejected, reloading the list', errors);
    } else {
      console.warn('todoChanges failed, reloading the list', errors.length ? errors : cause);
    }
    scheduleResync(delivered ? 0 : backoffMs(failures++));
    delivered = false;
  };

  const scheduleResync = (delay: number) => {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(() => void resync(), delay);
  };

  // deps.loadList is a fetch with a timeout (request() aborts after REQUEST_TIMEOUT_MS),
  // so a server that hangs cannot stall this loop: the attempt fails and is retried.
  const resync = async () => {
    if (stopped) return;
    try {
      const data = await deps.loadList();
      if (stopped) return;
      failures = 0;
      publish({ state: loadSnapshot(data.todoList.todos, data.todoList.cursor) });
      follow();
    } catch (error) {
      if (stopped) return;
      console.warn('todoList failed, retrying', error);
      scheduleResync(backoffMs(failures++));
    }
  };

  void resync();

  return {
    getSnapshot: () => snapshot,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped = true;
      clearTimeout(resyncTimer);
      clearTimeout(pongTimer);
      dispose?.();
      void client.dispose();
    },
  };
}
