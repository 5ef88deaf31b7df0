// Keeps a TodoState in step with the server: load a snapshot with `todoList`, then follow
// `todoChanges(after: cursor)` over one graphql-ws socket that reconnects forever. The
// decisions are machine.ts's; this shell only performs its effects and feeds it events.
import type { Client, ClientOptions, ExecutionResult, Sink } from 'graphql-ws';
import { TodoChangesSubscription, type GraphQLErrorLike } from './api';
import type { TodoChangesSubscription as TodoChangesResult, TodoListQuery } from './gql/graphql';
import { initialState, reduce, type Effect, type SyncEvent, type SyncState } from './machine';

export interface TodoSync {
  getSnapshot(): SyncState;
  subscribe(listener: () => void): () => void;
  stop(): void;
}

/** What startSync talks to: main.tsx passes the real ones, tests pass fakes. */
export interface SyncDeps {
  url: string;
  createClient(options: ClientOptions): Pick<Client, 'subscribe' | 'dispose'>;
  loadList(): Promise<TodoListQuery>;
}

const MAX_WAIT_MS = 5_000;
// graphql-ws pings every KEEP_ALIVE_MS but never notices a missing pong by itself: a
// server that stops answering (half-open TCP, frozen process) would look live forever.
const KEEP_ALIVE_MS = 10_000;
export const PONG_TIMEOUT_MS = 5_000;

/** Capped exponential backoff with jitter, so many tabs don't reconnect in lockstep. */
export function backoffMs(attempt: number): number {
  const base = Math.min(MAX_WAIT_MS, 250 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type Timer = ReturnType<typeof setTimeout> | undefined;
type Socket = { readyState: number; close(code: number, reason: string): void };

export function startSync(deps: SyncDeps): TodoSync {
  let state = initialState;
  let stopped = false;
  const listeners = new Set<() => void>();
  let socket: Socket | null = null;
  let unsubscribe: (() => void) | null = null;
  const timers: Record<'retry' | 'pong' | 'reopen', Timer> = {
    retry: undefined,
    pong: undefined,
    reopen: undefined,
  };
  // Events raised while effects run (a fake client may call back synchronously) wait
  // their turn, so every event sees the state its predecessors left.
  const queue: SyncEvent[] = [];
  let dispatching = false;

  const dispatch = (event: SyncEvent) => {
    if (stopped) return;
    queue.push(event);
    if (dispatching) return;
    dispatching = true;
    for (let next = queue.shift(); next && !stopped; next = queue.shift()) {
      const step = reduce(state, next);
      if (step.state !== state) {
        state = step.state;
        listeners.forEach((listener) => listener());
      }
      step.effects.forEach(perform);
    }
    dispatching = false;
  };

  const setTimer = (name: keyof typeof timers, ms: number, fire: () => void) => {
    clearTimeout(timers[name]);
    timers[name] = setTimeout(fire, ms);
  };

  const openSocket = () =>
    deps.createClient({
      url: deps.url,
      lazy: false,
      retryAttempts: Infinity,
      shouldRetry: () => true,
      retryWait: (retries) => sleep(backoffMs(retries)),
      keepAlive: KEEP_ALIVE_MS,
      onNonLazyError: (error) => dispatch({ type: 'gaveUp', error }),
      on: {
        connected: (connected) => {
          socket = connected as Socket;
          dispatch({ type: 'connected' });
        },
        closed: () => {
          socket = null;
          dispatch({ type: 'closed' });
        },
        // Our own pings only: graphql-ws answers the server's.
        ping: (received) => {
          if (!received) dispatch({ type: 'pingSent' });
        },
        pong: (received) => {
          if (received) dispatch({ type: 'pongReceived' });
        },
      },
    });

  const sink = (op: number): Sink<ExecutionResult<TodoChangesResult>> => ({
    next: (result) => {
      // graphql-ws types errors as GraphQLError; over the wire they are plain objects.
      const errors: readonly GraphQLErrorLike[] | undefined = result.errors;
      if (errors?.length) dispatch({ type: 'subscriptionFailed', op, errors });
      else if (result.data) dispatch({ type: 'changed', op, change: result.data.todoChanges });
    },
    error: (error) => {
      const errors = Array.isArray(error) ? error : [];
      dispatch({ type: 'subscriptionFailed', op, errors, cause: error });
    },
    complete: () =>
      dispatch({ type: 'subscriptionFailed', op, errors: [], cause: 'completed by the server' }),
  });

  // deps.loadList is a fetch with a timeout (request() aborts after REQUEST_TIMEOUT_MS),
  // so a server that hangs cannot stall the engine: the load fails and is retried.
  const perform = (effect: Effect) => {
    switch (effect.type) {
      case 'loadList': {
        const { op } = effect;
        deps.loadList().then(
          (data) => dispatch({ type: 'listLoaded', op, list: data.todoList }),
          (error: unknown) => dispatch({ type: 'listFailed', op, error }),
        );
        return;
      }
      case 'subscribe': {
        const query = TodoChangesSubscription.toString();
        const payload = { query, variables: { after: effect.after } };
        unsubscribe = client.subscribe<TodoChangesResult>(payload, sink(effect.op));
        return;
      }
      case 'unsubscribe':
        unsubscribe?.();
        unsubscribe = null;
        return;
      case 'retryLater': {
        const { op } = effect;
        setTimer('retry', backoffMs(effect.attempt), () => dispatch({ type: 'retryDue', op }));
        return;
      }
      case 'reopenSocket':
        setTimer('reopen', backoffMs(effect.attempt), () => {
          void client.dispose();
          client = openSocket();
        });
        return;
      case 'armPongTimer':
        setTimer('pong', PONG_TIMEOUT_MS, () => dispatch({ type: 'pongTimeout' }));
        return;
      case 'disarmPongTimer':
        clearTimeout(timers.pong);
        return;
      case 'closeSocket':
        if (socket?.readyState === 1 /* OPEN */) socket.close(effect.code, effect.reason);
        return;
      case 'log':
        console[effect.level](effect.message, effect.detail);
        return;
    }
  };

  let client = openSocket();

  return {
    getSnapshot: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped = true;
      Object.values(timers).forEach(clearTimeout);
      unsubscribe?.();
      void client.dispose();
    },
  };
}
