// Keeps a TodoState in step with the server: load a snapshot with `todoList`, then follow
// `todoChanges(after: cursor)` over one graphql-ws socket that reconnects forever.
import { createClient, type Client } from 'graphql-ws';
import {
  endpoints,
  hasErrorCode,
  request,
  TodoChangesSubscription,
  TodoListQuery,
  type GraphQLErrorLike,
} from './api';
import type { TodoChangesSubscription as TodoChangesResult } from './gql/graphql';
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

/** Capped exponential backoff with jitter, so many tabs don't reconnect in lockstep. */
export function backoffMs(attempt: number): number {
  const base = Math.min(MAX_WAIT_MS, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function startSync(url: string = endpoints().ws): TodoSync {
  let snapshot: SyncSnapshot = { state: emptyState, connection: 'connecting' };
  const listeners = new Set<() => void>();
  let stopped = false;
  // Each subscription gets a generation; callbacks of a replaced one are ignored, since
  // graphql-ws still calls `complete` on a sink after we dispose it.
  let generation = 0;
  let dispose: (() => void) | null = null;
  let failures = 0;
  let resyncTimer: ReturnType<typeof setTimeout> | undefined;

  const publish = (next: Partial<SyncSnapshot>) => {
    snapshot = { ...snapshot, ...next };
    listeners.forEach((listener) => listener());
  };

  const client: Client = createClient({
    url,
    lazy: false,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: (retries) => sleep(backoffMs(retries)),
    keepAlive: 10_000,
    on: {
      connected: () => publish({ connection: 'live' }),
      closed: () => {
        if (!stopped) publish({ connection: 'offline' });
      },
    },
  });

  const follow = () => {
    dispose?.();
    const mine = ++generation;
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
  };

  // Any broken subscription is repaired the same way: reload the snapshot and follow from
  // its cursor. For BAD_USER_INPUT (cursor unknown, e.g. database reset) that is the only
  // way; for anything else it is simply the safe way. The first retry is immediate.
  const fail = (errors: readonly GraphQLErrorLike[], cause?: unknown) => {
    dispose?.();
    dispose = null;
    generation++;
    if (hasErrorCode(errors, 'BAD_USER_INPUT')) {
      console.info('todoChanges: cursor rejected, reloading the list', errors);
    } else {
      console.warn('todoChanges failed, reloading the list', errors.length ? errors : cause);
    }
    scheduleResync(failures === 0 ? 0 : backoffMs(failures));
    failures++;
  };

  const scheduleResync = (delay: number) => {
    clearTimeout(resyncTimer);
    resyncTimer = setTimeout(() => void resync(), delay);
  };

  const resync = async () => {
    if (stopped) return;
    try {
      const data = await request(TodoListQuery);
      if (stopped) return;
      publish({ state: loadSnapshot(data.todoList.todos, data.todoList.cursor) });
      follow();
    } catch (error) {
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
      dispose?.();
      void client.dispose();
    },
  };
}
