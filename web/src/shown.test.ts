import { describe, expect, it } from 'vitest';
import { initialState, type SyncState } from './machine';
import type { Outbox, OutboxState } from './outbox';
import type { Entry, Op, Settled } from './outboxStore';
import { showWithOutbox } from './shown';
import type { TodoSync } from './sync';
import type { TodoState } from './todos';

function store<T>(initial: T) {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    getSnapshot: () => state,
    subscribe(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(next: T) {
      state = next;
      listeners.forEach((listener) => listener());
    },
  };
}

const entry = (seq: number, op: Op): Entry => ({ seq, op, label: '', queuedAt: 0 });
const create = entry(1, { type: 'create', id: 'c', title: 'eggs', completed: false });
const applied = (at: number): Settled => ({
  seq: 1,
  entry: create,
  verdict: { seq: 1, verdict: 'APPLIED', cursor: '12' },
  at,
  dismissed: false,
});
const milk = { id: 'm', title: 'milk', completed: false };
const live = (list: TodoState): SyncState => ({ ...initialState, phase: 'live', list });

function setUp(stored: TodoState | null, edits: OutboxState) {
  const sync = store<SyncState>(initialState);
  const outbox = store<OutboxState>(edits);
  const saved: TodoState[] = [];
  let clock = 0;
  const shown = showWithOutbox(
    { ...sync, stop: () => undefined } as TodoSync,
    { ...outbox, stop: () => undefined } as unknown as Outbox,
    stored,
    (list) => saved.push(list),
    () => clock,
  );
  return { sync, outbox, shown, saved, tick: (to: number) => (clock = to) };
}

describe('showWithOutbox', () => {
  it('shows the stored list with the queued edits before the first load', () => {
    const { shown } = setUp({ todos: [milk], cursor: '5' }, { queued: [create], settled: [] });
    expect(shown.getSnapshot().list).toEqual({
      todos: [milk, { id: 'c', title: 'eggs', completed: false }],
      cursor: '5',
    });
  });

  it('keeps an applied edit until the stream reaches its cursor, and keeps each list once', () => {
    const { sync, shown, saved } = setUp(null, { queued: [], settled: [applied(0)] });
    sync.set(live({ todos: [milk], cursor: '11' }));
    expect(shown.getSnapshot().list.todos.map((t) => t.id)).toEqual(['m', 'c']);
    const reached = { todos: [milk, { id: 'c', title: 'eggs', completed: false }], cursor: '12' };
    sync.set(live(reached));
    expect(shown.getSnapshot().list.todos.map((t) => t.id)).toEqual(['m', 'c']);
    expect(shown.getSnapshot()).toBe(shown.getSnapshot());
    // Deleted elsewhere once it came: the settled create does not bring it back.
    sync.set(live({ todos: [milk], cursor: '13' }));
    expect(shown.getSnapshot().list.todos).toEqual([milk]);
    expect(saved.map((list) => list.cursor)).toEqual(['11', '12', '13']);
  });

  it('lets a list loaded after an edit settled replace it, even at a lower cursor (a reset journal)', () => {
    const { sync, shown, tick } = setUp(null, { queued: [], settled: [applied(5)] });
    sync.set(live({ todos: [milk], cursor: '11' }));
    expect(shown.getSnapshot().list.todos).toHaveLength(2);
    tick(6);
    sync.set({ ...live({ todos: [milk], cursor: '11' }), phase: 'resyncing' });
    expect(shown.getSnapshot().list.todos).toHaveLength(2);
    sync.set(live({ todos: [milk], cursor: '1' }));
    expect(shown.getSnapshot().list.todos).toEqual([milk]);
  });
});
