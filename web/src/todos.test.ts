import { describe, expect, it } from 'vitest';
import {
  applyChange,
  applyChanges,
  countTodos,
  emptyState,
  filterFromHash,
  isNewer,
  loadSnapshot,
  normalizeTitle,
  pluralize,
  visibleTodos,
  type TodoChange,
} from './todos';

// A row as the server sends it (the page's Todo may lack its list).
type Row = TodoChange['todo'];

const a: Row = { id: '1', title: 'a', completed: false, listId: 'l' };
const b: Row = { id: '2', title: 'b', completed: true, listId: 'l' };
const c: Row = { id: '3', title: 'c', completed: false, listId: 'l' };

const change = (op: TodoChange['op'], todo: Row, cursor: string, removed = false): TodoChange => ({
  op,
  removed,
  todo,
  cursor,
});

describe('applyChange', () => {
  const start = loadSnapshot([a, b], '10');

  it('appends a created todo and advances the cursor', () => {
    const next = applyChange(start, change('CREATED', c, '11'));
    expect(next.todos).toEqual([a, b, c]);
    expect(next.cursor).toBe('11');
  });

  it('replaces an updated todo in place', () => {
    const renamed = { ...a, title: 'A', completed: true };
    const next = applyChange(start, change('UPDATED', renamed, '11'));
    expect(next.todos).toEqual([renamed, b]);
  });

  it('removes a deleted todo', () => {
    const next = applyChange(start, change('DELETED', a, '11'));
    expect(next.todos).toEqual([b]);
    expect(next.cursor).toBe('11');
  });

  it('keeps the rows that left the person\'s sight apart from the deleted ones, until one comes back', () => {
    const moved = applyChange(start, change('DELETED', a, '11', true));
    expect(moved.todos).toEqual([b]);
    expect(moved.outOfSight).toEqual(new Set([a.id]));
    const deleted = applyChange(moved, change('DELETED', b, '12'));
    expect(deleted.outOfSight).toEqual(new Set([a.id]));
    const back = applyChange(deleted, change('CREATED', a, '13'));
    expect(back.todos).toEqual([a]);
    expect(back.outOfSight).toBeUndefined();
  });

  it('is idempotent: a replayed event leaves the state unchanged', () => {
    const once = applyChange(start, change('CREATED', c, '11'));
    expect(applyChange(once, change('CREATED', c, '11'))).toBe(once);
  });

  it('ignores events not newer than the last applied cursor', () => {
    expect(applyChange(start, change('DELETED', a, '10'))).toBe(start);
    expect(applyChange(start, change('DELETED', a, '9'))).toBe(start);
  });

  it('compares cursors as integers, not strings', () => {
    const next = applyChange(loadSnapshot([], '9'), change('CREATED', c, '10'));
    expect(next.todos).toEqual([c]);
  });

  it('upserts an update for an unknown todo and tolerates deleting an unknown one', () => {
    const updated = applyChange(emptyState, change('UPDATED', a, '1'));
    expect(updated.todos).toEqual([a]);
    const deleted = applyChange(updated, change('DELETED', c, '2'));
    expect(deleted.todos).toEqual([a]);
    expect(deleted.cursor).toBe('2');
  });

  it('keeps only the fields the page needs', () => {
    const withTimes = { ...c, createdTime: '2024-01-01T00:00:00Z' } as Row;
    expect(applyChange(start, change('CREATED', withTimes, '11')).todos[2]).toEqual(c);
  });

  it('replays a reconnect overlap without doubling anything', () => {
    const events = [
      change('CREATED', c, '11'),
      change('UPDATED', { ...c, completed: true }, '12'),
      change('DELETED', a, '13'),
    ];
    const live = applyChanges(start, events);
    const replayed = applyChanges(live, events);
    expect(replayed).toBe(live);
    expect(live.todos).toEqual([b, { ...c, completed: true }]);
    expect(live.cursor).toBe('13');
  });
});

describe('isNewer', () => {
  it('treats any cursor as newer than none', () => {
    expect(isNewer('0', null)).toBe(true);
  });

  it('handles positions beyond Number.MAX_SAFE_INTEGER', () => {
    expect(isNewer('9007199254740993', '9007199254740992')).toBe(true);
    expect(isNewer('9007199254740992', '9007199254740993')).toBe(false);
  });

  it('never takes a malformed cursor as newer', () => {
    expect(isNewer('abc', '1')).toBe(false);
  });
});

describe('filtering by route', () => {
  it('maps hashes to filters', () => {
    expect(filterFromHash('')).toBe('all');
    expect(filterFromHash('#/')).toBe('all');
    expect(filterFromHash('#/active')).toBe('active');
    expect(filterFromHash('#/completed')).toBe('completed');
    expect(filterFromHash('#/completed/')).toBe('completed');
    expect(filterFromHash('#/nonsense')).toBe('all');
  });

  it('shows the todos of each filter', () => {
    const todos = [a, b, c];
    expect(visibleTodos(todos, 'all')).toEqual([a, b, c]);
    expect(visibleTodos(todos, 'active')).toEqual([a, c]);
    expect(visibleTodos(todos, 'completed')).toEqual([b]);
  });

  it('keeps the row being edited listed, in place, when it stops matching', () => {
    const todos = [a, b, c];
    expect(visibleTodos(todos, 'active', b.id)).toEqual([a, b, c]);
    expect(visibleTodos(todos, 'completed', c.id)).toEqual([b, c]);
    expect(visibleTodos(todos, 'completed', 'gone')).toEqual([b]);
  });
});

describe('counts', () => {
  it('counts active and completed todos', () => {
    expect(countTodos([a, b, c])).toEqual({ total: 3, active: 2, completed: 1 });
    expect(countTodos([])).toEqual({ total: 0, active: 0, completed: 0 });
  });

  it('pluralises as TodoMVC does', () => {
    expect(pluralize(0, 'item')).toBe('items');
    expect(pluralize(1, 'item')).toBe('item');
    expect(pluralize(2, 'item')).toBe('items');
  });
});

describe('normalizeTitle', () => {
  it('trims titles', () => {
    expect(normalizeTitle('  buy milk \n')).toBe('buy milk');
  });

  it('returns null for an empty title so the todo is deleted', () => {
    expect(normalizeTitle('   ')).toBeNull();
    expect(normalizeTitle('')).toBeNull();
  });
});
