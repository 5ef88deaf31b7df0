import { describe, expect, it } from 'vitest';
import {
  initialState,
  reduce,
  type Effect,
  type Phase,
  type SyncEvent,
  type SyncState,
} from './machine';
import { emptyState, loadSnapshot, type TodoChange } from './todos';

// A row as the server sends it (the page's Todo may lack its list).
type Row = TodoChange['todo'];

const a: Row = { id: '1', title: 'a', completed: false, listId: 'l' };
const b: Row = { id: '2', title: 'b', completed: true, listId: 'l' };
const shown = loadSnapshot([a], '5');

const at = (phase: Phase, more: Partial<SyncState> = {}): SyncState => ({
  phase,
  list: phase === 'connecting' || phase === 'loading' ? emptyState : shown,
  op: 7,
  failures: 0,
  delivered: false,
  ...more,
});

const created = (todo: Row, cursor: string): TodoChange => ({ op: 'CREATED', removed: false, todo, cursor });
const types = (effects: Effect[]) => effects.map((e) => e.type);
const refused = (code: string) => [{ message: 'unknown cursor', extensions: { code } }];

// Every phase with every event it reacts to: where it goes and what it asks the shell to
// do. Events carrying an op use the state's current op (7) here; stale ones are below.
type Transition = [Phase, SyncEvent, Phase, Effect['type'][]];
// Loading the first list and reloading one behave alike, bar the phase they stay in.
const loadingTransitions = (phase: 'loading' | 'resyncing'): Transition[] => [
  [phase, { type: 'listLoaded', op: 7, list: { cursor: '9', todos: [b] } }, 'live', ['subscribe']],
  [phase, { type: 'listFailed', op: 7, error: new TypeError('x') }, phase, ['log', 'retryLater']],
  [phase, { type: 'retryDue', op: 7 }, phase, ['loadList']],
  [phase, { type: 'closed' }, 'offline', ['disarmPongTimer']],
];
const transitions: Transition[] = [
  ['connecting', { type: 'connected' }, 'loading', ['loadList']],
  ['connecting', { type: 'closed' }, 'offline', ['disarmPongTimer']],
  ...loadingTransitions('loading'),
  ['live', { type: 'changed', op: 7, change: created(b, '6') }, 'live', []],
  [
    'live',
    { type: 'subscriptionFailed', op: 7, errors: [] },
    'resyncing',
    ['unsubscribe', 'log', 'retryLater'],
  ],
  ['live', { type: 'closed' }, 'offline', ['unsubscribe', 'disarmPongTimer']],
  ...loadingTransitions('resyncing'),
  ['offline', { type: 'connected' }, 'live', ['subscribe']],
];

describe('reduce', () => {
  it.each(transitions)('%s --%o--> %s', (from, event, to, effects) => {
    const step = reduce(at(from), event);
    expect(step.state.phase).toBe(to);
    expect(types(step.effects)).toEqual(effects);
  });

  it('starts connecting, with nothing shown', () => {
    expect(initialState.phase).toBe('connecting');
    expect(initialState.list).toEqual(emptyState);
  });

  it('loads the list once the socket is up, then follows from its cursor', () => {
    const loading = reduce(initialState, { type: 'connected' });
    expect(loading.effects).toEqual([{ type: 'loadList', op: loading.state.op }]);
    const list = { cursor: '5', todos: [a] };
    const live = reduce(loading.state, { type: 'listLoaded', op: loading.state.op, list });
    expect(live.state.list).toEqual(shown);
    expect(live.effects).toEqual([{ type: 'subscribe', op: live.state.op, after: '5' }]);
  });

  it('applies events to the shown list and advances the cursor', () => {
    const step = reduce(at('live', { failures: 3 }), {
      type: 'changed',
      op: 7,
      change: created(b, '6'),
    });
    expect(step.state.list).toEqual({ todos: [a, b], cursor: '6' });
    expect(step.state.delivered).toBe(true);
    expect(step.state.failures).toBe(0);
  });

  it('resumes after the last applied cursor when the socket comes back', () => {
    const live = reduce(at('live'), { type: 'changed', op: 7, change: created(b, '6') }).state;
    const offline = reduce(live, { type: 'closed' }).state;
    const back = reduce(offline, { type: 'connected' });
    expect(back.state.phase).toBe('live');
    expect(back.effects).toEqual([{ type: 'subscribe', op: back.state.op, after: '6' }]);
  });

  it('loads the list on reconnecting when none was ever loaded', () => {
    const step = reduce(at('offline', { list: emptyState }), { type: 'connected' });
    expect(step.state.phase).toBe('loading');
    expect(types(step.effects)).toEqual(['loadList']);
  });

  it('ignores a closed socket while already offline (each failed reconnect closes one)', () => {
    const offline = at('offline');
    expect(reduce(offline, { type: 'closed' })).toEqual({ state: offline, effects: [] });
  });

  it('ignores a connected socket while already up', () => {
    for (const phase of ['loading', 'live', 'resyncing'] as const) {
      const state = at(phase);
      expect(reduce(state, { type: 'connected' })).toEqual({ state, effects: [] });
    }
  });

  it('ignores results and callbacks of an operation it has moved on from', () => {
    const stale: SyncEvent[] = [
      { type: 'listLoaded', op: 6, list: { cursor: '9', todos: [b] } },
      { type: 'listFailed', op: 6, error: new Error('late') },
      { type: 'changed', op: 6, change: created(b, '9') },
      { type: 'subscriptionFailed', op: 6, errors: [] },
      { type: 'retryDue', op: 6 },
    ];
    for (const phase of ['connecting', 'loading', 'live', 'resyncing', 'offline'] as const) {
      const state = at(phase);
      for (const event of stale) expect(reduce(state, event)).toEqual({ state, effects: [] });
    }
  });

  it('gives every new operation a new op, so the old one becomes stale', () => {
    const live = at('live');
    const offline = reduce(live, { type: 'closed' }).state;
    expect(offline.op).not.toBe(live.op);
    // The subscription's late `complete` after the close changes nothing.
    const late = reduce(offline, { type: 'subscriptionFailed', op: live.op, errors: [] });
    expect(late.state).toBe(offline);
  });

  it('retries a failing load with growing backoff, reset by a loaded list', () => {
    let state = at('loading');
    const attempts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const failed = reduce(state, { type: 'listFailed', op: state.op, error: new TypeError('x') });
      const retry = failed.effects.find((e) => e.type === 'retryLater');
      attempts.push(retry!.attempt);
      state = reduce(failed.state, { type: 'retryDue', op: retry!.op }).state;
    }
    expect(attempts).toEqual([0, 1, 2]);
    const list = { cursor: '5', todos: [] };
    expect(reduce(state, { type: 'listLoaded', op: state.op, list }).state.failures).toBe(0);
  });

  it('reloads at once after a subscription that delivered, with backoff after one that did not', () => {
    const worked = reduce(at('live', { delivered: true, failures: 2 }), {
      type: 'subscriptionFailed',
      op: 7,
      errors: [],
      cause: 'completed by the server',
    });
    expect(types(worked.effects)).toEqual(['unsubscribe', 'log', 'loadList']);
    expect(worked.state.failures).toBe(2);

    const never = reduce(at('live', { failures: 2 }), {
      type: 'subscriptionFailed',
      op: 7,
      errors: [],
    });
    expect(never.effects).toContainEqual({ type: 'retryLater', op: never.state.op, attempt: 2 });
    expect(never.state.failures).toBe(3);
  });

  it.each(['BAD_USER_INPUT', 'CURSOR_EXPIRED'])(
    'treats a cursor refused with %s as routine: reload, go on live, log at info',
    (code) => {
      const failed = reduce(at('live', { delivered: true }), {
        type: 'subscriptionFailed',
        op: 7,
        errors: refused(code),
      });
      expect(failed.state.phase).toBe('resyncing');
      const logs = failed.effects.filter((e) => e.type === 'log');
      expect(logs.map((e) => e.level)).toEqual(['info']);
      const load = failed.effects.find((e) => e.type === 'loadList')!;
      const list = { cursor: '1', todos: [b] };
      const live = reduce(failed.state, { type: 'listLoaded', op: load.op, list });
      expect(live.state.phase).toBe('live');
      expect(live.state.list).toEqual(loadSnapshot([b], '1'));
      expect(live.effects).toEqual([{ type: 'subscribe', op: live.state.op, after: '1' }]);
    },
  );

  it('logs any other subscription failure as a warning', () => {
    const errors = [{ message: 'boom', extensions: { code: 'INTERNAL_SERVER_ERROR' } }];
    const step = reduce(at('live'), { type: 'subscriptionFailed', op: 7, errors });
    expect(step.effects).toContainEqual({
      type: 'log',
      level: 'warn',
      message: 'todoChanges failed, reloading the list',
      detail: errors,
    });
  });

  it.each(['connecting', 'loading', 'live', 'resyncing', 'offline'] as const)(
    'from %s, reopens the socket with backoff when graphql-ws gives up',
    (phase) => {
      const step = reduce(at(phase, { failures: 1 }), { type: 'gaveUp', error: { code: 4500 } });
      expect(step.state.phase).toBe('offline');
      expect(step.state.failures).toBe(2);
      expect(step.effects).toContainEqual({ type: 'reopenSocket', attempt: 1 });
      expect(step.effects.some((e) => e.type === 'unsubscribe')).toBe(phase === 'live');
    },
  );

  it.each(['connecting', 'loading', 'live', 'resyncing', 'offline'] as const)(
    'in %s, arms a pong timer per ping, disarms it on the pong, and closes on a timeout',
    (phase) => {
      const state = at(phase);
      expect(reduce(state, { type: 'pingSent' })).toEqual({
        state,
        effects: [{ type: 'armPongTimer' }],
      });
      expect(reduce(state, { type: 'pongReceived' })).toEqual({
        state,
        effects: [{ type: 'disarmPongTimer' }],
      });
      expect(reduce(state, { type: 'pongTimeout' })).toEqual({
        state,
        effects: [{ type: 'closeSocket', code: 4408, reason: 'Request Timeout' }],
      });
    },
  );
});
