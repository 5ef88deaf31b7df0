import { describe, expect, it } from 'vitest';
import { FSI, PDI } from './bidi';
import { goneMessages, keepLists, keptLists, mayEdit, moveTargets, sameLists, shownList, todosOf, type TodoList } from './lists';
import { memoryStorage } from './testing';

const list = (id: string, name: string, role: TodoList['role'] = 'OWNER', isDefault = false): TodoList => ({
  id,
  name,
  role,
  isDefault,
  members: [],
});

const home = list('h', 'Todos', 'OWNER', true);
const shared = list('s', 'groceries', 'VIEWER');
const work = list('w', 'work', 'EDITOR');

describe('which list is shown', () => {
  it('is the one asked for while it is there, else the default list', () => {
    expect(shownList([home, shared], 's')).toBe(shared);
    expect(shownList([home, work], 's')).toBe(home);
    expect(shownList([home, shared], null)).toBe(home);
    expect(shownList([work], 'gone')).toBe(work);
    expect(shownList([], null)).toBeNull();
  });

  it('holds only its own todos', () => {
    const todos = [
      { id: '1', title: 'a', completed: false, listId: 'h' },
      { id: '2', title: 'b', completed: true, listId: 's' },
      { id: '3', title: 'c', completed: false, listId: 'h' },
    ];
    expect(todosOf(todos, 'h').map((t) => t.id)).toEqual(['1', '3']);
    expect(todosOf(todos, 'x')).toEqual([]);
  });
});

describe('roles', () => {
  it('let owners and editors change todos, viewers only read', () => {
    expect([mayEdit('OWNER'), mayEdit('EDITOR'), mayEdit('VIEWER')]).toEqual([true, true, false]);
  });
});

describe('where a row may move', () => {
  it('is the person\'s other lists they may write in, none when there is none', () => {
    const trip = list('t', 'trip', 'OWNER');
    expect(moveTargets([home, shared, work, trip], 'h')).toEqual([work, trip]);
    expect(moveTargets([home, shared, work], 'w')).toEqual([home]);
    expect(moveTargets([home, shared], 'h')).toEqual([]);
    expect(moveTargets([home], 'h')).toEqual([]);
  });
});

describe('lists that went away', () => {
  it('are told as gone, neither deleted nor unshared, when the page did not see them go', () => {
    expect(goneMessages([home, shared, work], [home], new Set(), new Set(['w']), true)).toEqual([
      '«groceries» is no longer among your lists',
      '«work» was deleted',
    ]);
  });

  it('are told by name, except the ones this page deleted', () => {
    expect(goneMessages([home, shared, work], [home], new Set(['w']))).toEqual([
      '«groceries» is no longer shared with you',
    ]);
    expect(goneMessages([home], [home, shared], new Set())).toEqual([]);
    expect(goneMessages([home, shared, work], [home], new Set(), new Set(['w']))).toEqual([
      '«groceries» is no longer shared with you',
      '«work» was deleted',
    ]);
  });

  it('isolate a right-to-left name (bidi.ts), so the sentence keeps its order', () => {
    const hebrew = list('r', 'קניות 2', 'VIEWER');
    const arabic = list('a', 'عمل!', 'EDITOR');
    expect(goneMessages([home, hebrew, arabic], [home], new Set(), new Set(['a']))).toEqual([
      `«${FSI}קניות 2${PDI}» is no longer shared with you`,
      `«${FSI}عمل!${PDI}» was deleted`,
    ]);
  });

  it('a read that changed nothing is the same lists', () => {
    expect(sameLists([home, shared], [{ ...home }, { ...shared }])).toBe(true);
    expect(sameLists([home, shared], [home, { ...shared, name: 'food' }])).toBe(false);
  });
});

describe('lists kept for a start without the server', () => {
  it('are each person\'s own, as last kept', () => {
    const storage = memoryStorage();
    expect(keptLists('ann', storage)).toBeNull();
    keepLists('ann', [home, shared], storage);
    keepLists('bob', [work], storage);
    keepLists('ann', [home], storage);
    expect(keptLists('ann', storage)).toEqual([home]);
    expect(keptLists('bob', storage)).toEqual([work]);
  });

  it('are none when what is kept is not a list of lists', () => {
    const storage = memoryStorage();
    storage.setItem('graphql-todos.ann.lists', '{"not": "an array"}');
    expect(keptLists('ann', storage)).toBeNull();
    storage.setItem('graphql-todos.ann.lists', 'not json');
    expect(keptLists('ann', storage)).toBeNull();
  });
});
