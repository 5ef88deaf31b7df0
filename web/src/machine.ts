// The sync engine's decisions as a pure reducer: (state, event) -> state + effects. It
// never touches a socket, a timer or the network; sync.ts performs the effects and turns
// what happens into events. web/README.md has the transitions as a table.
import { hasErrorCode, type GraphQLErrorLike } from './api';
import type { TodoListQuery } from './gql/graphql';
import { applyChange, emptyState, loadSnapshot, type TodoChange, type TodoState } from './todos';

/**
 * - connecting: the socket has never been up; nothing is shown yet.
 * - loading: the socket is up and the first `todoList` is on its way (or waits to retry).
 * - live: the socket is up and `todoChanges(after: cursor)` follows the shown list.
 * - resyncing: the subscription broke (e.g. the cursor was refused); `todoList` is
 *   reloaded while the old list stays on screen.
 * - offline: the socket is down; graphql-ws reconnects with backoff.
 */
export type Phase = 'connecting' | 'loading' | 'live' | 'resyncing' | 'offline';

export interface SyncState {
  phase: Phase;
  /** What the page shows; its cursor is where a subscription resumes. */
  list: TodoState;
  /**
   * Id of the current list load, retry wait or subscription. Every phase change starts a
   * new one, so results and callbacks of an older one (graphql-ws calls `complete` on a
   * disposed sink, a load may outlive a closed socket) are recognised and ignored.
   */
  op: number;
  /** Consecutive failures since the last loaded list or received event: the backoff step. */
  failures: number;
  /**
   * Whether the current subscription delivered an event. Only one that worked is repaired
   * at once; one failing right away backs off, or a server that always refuses it would
   * be hammered in a tight reload loop.
   */
  delivered: boolean;
}

export type SyncEvent =
  | { type: 'connected' }
  | { type: 'closed' }
  /** graphql-ws stopped reconnecting (it treats some close codes as fatal). */
  | { type: 'gaveUp'; error: unknown }
  | { type: 'pingSent' }
  | { type: 'pongReceived' }
  | { type: 'pongTimeout' }
  | { type: 'listLoaded'; op: number; list: TodoListQuery['todoList'] }
  | { type: 'listFailed'; op: number; error: unknown }
  | { type: 'changed'; op: number; change: TodoChange }
  | { type: 'subscriptionFailed'; op: number; errors: readonly GraphQLErrorLike[]; cause?: unknown }
  | { type: 'retryDue'; op: number };

export type Effect =
  | { type: 'loadList'; op: number }
  | { type: 'subscribe'; op: number; after: string }
  | { type: 'unsubscribe' }
  /** Dispatch `retryDue(op)` after backoff step `attempt`. */
  | { type: 'retryLater'; op: number; attempt: number }
  /** Replace the graphql-ws client after backoff step `attempt`. */
  | { type: 'reopenSocket'; attempt: number }
  | { type: 'armPongTimer' }
  | { type: 'disarmPongTimer' }
  | { type: 'closeSocket'; code: number; reason: string }
  | { type: 'log'; level: 'info' | 'warn'; message: string; detail: unknown };

export interface Step {
  state: SyncState;
  effects: Effect[];
}

export const initialState: SyncState = {
  phase: 'connecting',
  list: emptyState,
  op: 0,
  failures: 0,
  delivered: false,
};

/**
 * Codes with which the server refuses a resume cursor it no longer knows (a reset
 * journal, or one trimmed past it). Reloading the list is the cure, so it is no failure.
 */
export const CURSOR_REFUSED_CODES: readonly string[] = ['BAD_USER_INPUT', 'CURSOR_EXPIRED'];

// graphql-ws closes a socket whose ping goes unanswered with this code; it retries it.
const PONG_TIMEOUT_CLOSE = { code: 4408, reason: 'Request Timeout' };

const unchanged = (state: SyncState): Step => ({ state, effects: [] });

export function reduce(state: SyncState, event: SyncEvent): Step {
  if ('op' in event && event.op !== state.op) return unchanged(state);
  switch (event.type) {
    case 'connected':
      return state.phase === 'connecting' || state.phase === 'offline'
        ? resume(state)
        : unchanged(state);
    case 'closed':
      return state.phase === 'offline' ? unchanged(state) : goOffline(state);
    case 'gaveUp': {
      const down = goOffline(state);
      const log = { message: 'socket given up, opening a new one', detail: event.error };
      return {
        state: { ...down.state, failures: state.failures + 1 },
        effects: [
          ...down.effects,
          { type: 'log', level: 'warn', ...log },
          { type: 'reopenSocket', attempt: state.failures },
        ],
      };
    }
    case 'pingSent':
      return { state, effects: [{ type: 'armPongTimer' }] };
    case 'pongReceived':
      return { state, effects: [{ type: 'disarmPongTimer' }] };
    case 'pongTimeout':
      return { state, effects: [{ type: 'closeSocket', ...PONG_TIMEOUT_CLOSE }] };
    case 'listLoaded': {
      const list = loadSnapshot(event.list.todos, event.list.cursor);
      return follow({ ...state, list, failures: 0 });
    }
    case 'listFailed': {
      const log = { message: 'todoList failed, retrying', detail: event.error };
      return after([{ type: 'log', level: 'warn', ...log }], backOff(state, state.phase));
    }
    case 'retryDue':
      return load(state, state.phase);
    case 'changed':
      return {
        state: {
          ...state,
          list: applyChange(state.list, event.change),
          failures: 0,
          delivered: true,
        },
        effects: [],
      };
    case 'subscriptionFailed':
      return resync(state, event.errors, event.cause);
  }
}

/** After (re)connecting: follow from the shown list's cursor, or load one first. */
function resume(state: SyncState): Step {
  return state.list.cursor === null ? load(state, 'loading') : follow(state);
}

function load(state: SyncState, phase: Phase): Step {
  const op = state.op + 1;
  return { state: { ...state, phase, op }, effects: [{ type: 'loadList', op }] };
}

function follow(state: SyncState): Step {
  const op = state.op + 1;
  // Only reached with a loaded list, whose cursor is never null.
  const after = state.list.cursor!;
  return {
    state: { ...state, phase: 'live', op, delivered: false },
    effects: [{ type: 'subscribe', op, after }],
  };
}

function goOffline(state: SyncState): Step {
  // graphql-ws would resubscribe with the old variables; ours resume from a newer cursor.
  const effects: Effect[] = state.phase === 'live' ? [{ type: 'unsubscribe' }] : [];
  return {
    state: { ...state, phase: 'offline', op: state.op + 1 },
    effects: [...effects, { type: 'disarmPongTimer' }],
  };
}

// Any broken subscription is repaired the same way: reload the list and follow from its
// cursor. For a refused cursor that is the only way; for anything else the safe way.
function resync(state: SyncState, errors: readonly GraphQLErrorLike[], cause: unknown): Step {
  const refused = CURSOR_REFUSED_CODES.some((code) => hasErrorCode(errors, code));
  const log: Effect = refused
    ? {
        type: 'log',
        level: 'info',
        message: 'todoChanges: cursor refused, reloading the list',
        detail: errors,
      }
    : {
        type: 'log',
        level: 'warn',
        message: 'todoChanges failed, reloading the list',
        detail: errors.length ? errors : cause,
      };
  const next = { ...state, delivered: false };
  const repair = state.delivered ? load(next, 'resyncing') : backOff(next, 'resyncing');
  return after([{ type: 'unsubscribe' }, log], repair);
}

/** Waits out backoff step `failures`, then `retryDue` loads the list. */
function backOff(state: SyncState, phase: Phase): Step {
  const op = state.op + 1;
  return {
    state: { ...state, phase, op, failures: state.failures + 1 },
    effects: [{ type: 'retryLater', op, attempt: state.failures }],
  };
}

function after(effects: Effect[], step: Step): Step {
  return { state: step.state, effects: [...effects, ...step.effects] };
}
