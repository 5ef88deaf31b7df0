import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createCommands } from './commands';
import type { ListSeen, Op } from './outboxStore';

// A fake outbox that records what it was asked to queue and fails when told.
function fakeOutbox(fail: () => boolean = () => false) {
  const added: { op: Op; label: string }[] = [];
  const add = async (op: Op, label: string) => {
    if (fail()) throw new DOMException('the disk is full', 'QuotaExceededError');
    added.push({ op, label });
  };
  return { outbox: { add }, added };
}

const shown = () => [
  { id: '3', title: 'milk', completed: false },
  { id: '4', title: 'eggs', completed: true },
];

describe('createCommands', () => {
  beforeEach(() => {
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('queues each intent as its edit, with the title the user saw', async () => {
    const { outbox, added } = fakeOutbox();
    const commands = createCommands(outbox, shown, { newId: () => 'new-id' });
    await commands.createTodo('bread');
    await commands.renameTodo('3', 'oat milk');
    await commands.setCompleted('3', true);
    await commands.deleteTodo('3');
    await commands.toggleAll(false);
    await commands.clearCompleted();
    expect(added).toEqual([
      { op: { type: 'create', id: 'new-id', title: 'bread', completed: false }, label: 'bread' },
      { op: { type: 'update', id: '3', title: 'oat milk' }, label: 'milk' },
      { op: { type: 'update', id: '3', completed: true }, label: 'milk' },
      { op: { type: 'delete', id: '3' }, label: 'milk' },
      // A list-wide edit names the rows on screen (clear completed: the completed ones).
      { op: { type: 'toggleAll', completed: false, ids: ['3', '4'] }, label: '' },
      { op: { type: 'clearCompleted', ids: ['4'] }, label: '' },
    ]);
  });

  it('keeps with each edit the list it was made in, for a refusal once that list is lost', async () => {
    const lists: ListSeen[] = [];
    const outbox = {
      add: async (_op: Op, _label: string, list?: ListSeen) => void lists.push(list ?? { id: '-', name: '-' }),
    };
    const rows = () => [
      { id: '3', title: 'milk', completed: false, listId: 'L1' },
      // Moved to another list by another page while edited here (App.tsx keeps it on screen).
      { id: '5', title: 'report', completed: true, listId: 'L2' },
    ];
    const commands = createCommands(outbox, rows, { listId: () => 'L1', listName: () => 'trip' });
    await commands.createTodo('bread');
    await commands.setCompleted('3', true);
    await commands.renameTodo('5', 'final report');
    await commands.clearCompleted();
    const trip = { id: 'L1', name: 'trip' };
    expect(lists).toEqual([trip, trip, { id: '-', name: '-' }, trip]);
  });

  it('puts a new todo in the list on screen and scopes the list-wide intents to it', async () => {
    const { outbox, added } = fakeOutbox();
    let listId: string | undefined = 'L1';
    const commands = createCommands(outbox, shown, { listId: () => listId, newId: () => 'n' });
    await commands.createTodo('bread');
    await commands.toggleAll(true);
    await commands.clearCompleted();
    await commands.renameTodo('3', 'oat milk');
    listId = 'L2';
    await commands.createTodo('eggs');
    expect(added.map((a) => a.op)).toEqual([
      { type: 'create', id: 'n', title: 'bread', completed: false, listId: 'L1' },
      { type: 'toggleAll', completed: true, listId: 'L1', ids: ['3', '4'] },
      { type: 'clearCompleted', listId: 'L1', ids: ['4'] },
      { type: 'update', id: '3', title: 'oat milk' },
      { type: 'create', id: 'n', title: 'eggs', completed: false, listId: 'L2' },
    ]);
  });

  it('labels an edit of a row on screen though no longer in the list shown', async () => {
    // The row being edited stays on screen when another page moves it to another list
    // (App.tsx): its rename, delete or toggle still carries the title the user saw.
    const { outbox, added } = fakeOutbox();
    const rows = () => [
      { id: '3', title: 'milk', completed: false, listId: 'L1' },
      { id: '5', title: 'report', completed: true, listId: 'L2' },
    ];
    const commands = createCommands(outbox, rows, { listId: () => 'L1' });
    await commands.renameTodo('5', 'final report');
    await commands.setCompleted('5', false);
    await commands.deleteTodo('5');
    await commands.toggleAll(true);
    await commands.clearCompleted();
    expect(added).toEqual([
      { op: { type: 'update', id: '5', title: 'final report' }, label: 'report' },
      { op: { type: 'update', id: '5', completed: false }, label: 'report' },
      { op: { type: 'delete', id: '5' }, label: 'report' },
      // The list-wide edits keep to the list shown.
      { op: { type: 'toggleAll', completed: true, listId: 'L1', ids: ['3'] }, label: '' },
      { op: { type: 'clearCompleted', listId: 'L1', ids: [] }, label: '' },
    ]);
  });

  it('keeps the list-wide intents to the rows of the list on screen as it switches', async () => {
    // The page holds every list's rows; each list-wide edit names those of the list shown
    // when it is made (and a row that names no list, as open mode's).
    const { outbox, added } = fakeOutbox();
    const rows = () => [
      { id: '1', title: 'milk', completed: true, listId: 'home' },
      { id: '2', title: 'passport', completed: true, listId: 'trip' },
      { id: '3', title: 'bread', completed: false, listId: 'home' },
      { id: '4', title: 'tickets', completed: false, listId: 'trip' },
      { id: '5', title: 'new', completed: true },
    ];
    let listId = 'home';
    const commands = createCommands(outbox, rows, { listId: () => listId });
    await commands.toggleAll(true);
    await commands.clearCompleted();
    listId = 'trip';
    await commands.toggleAll(false);
    await commands.clearCompleted();
    expect(added.map((a) => a.op)).toEqual([
      { type: 'toggleAll', completed: true, listId: 'home', ids: ['1', '3', '5'] },
      { type: 'clearCompleted', listId: 'home', ids: ['1', '5'] },
      { type: 'toggleAll', completed: false, listId: 'trip', ids: ['2', '4', '5'] },
      { type: 'clearCompleted', listId: 'trip', ids: ['2', '5'] },
    ]);
  });

  it('moves a row into another list, with the title and the list name the user saw', async () => {
    const { outbox, added } = fakeOutbox();
    const commands = createCommands(outbox, shown, { listId: () => 'L1' });
    expect(await commands.moveTodo('3', 'L2', 'work')).toBe(true);
    expect(added).toEqual([{ op: { type: 'move', id: '3', listId: 'L2', listName: 'work' }, label: 'milk' }]);
    const refused = createCommands(fakeOutbox(() => true).outbox, shown);
    expect(await refused.moveTodo('3', 'L2', 'work')).toBe(false);
    expect(refused.errors.getSnapshot()).toBe('Could not move the todo: the disk is full');
  });

  it('resolves false when the edit could not be stored, and says so until the next one is', async () => {
    let fail = true;
    const { outbox } = fakeOutbox(() => fail);
    const commands = createCommands(outbox, shown);
    const changes = vi.fn();
    commands.errors.subscribe(changes);

    expect(await commands.renameTodo('3', 'x')).toBe(false);
    expect(commands.errors.getSnapshot()).toBe('Could not rename the todo: the disk is full');
    expect(changes).toHaveBeenCalledTimes(1);

    fail = false;
    expect(await commands.createTodo('y')).toBe(true);
    expect(commands.errors.getSnapshot()).toBeNull();
    expect(changes).toHaveBeenCalledTimes(2);
  });

  it('clears the alert when dismissed, and only notifies on a change', async () => {
    const { outbox } = fakeOutbox(() => true);
    const commands = createCommands(outbox, shown);
    const changes = vi.fn();
    const unsubscribe = commands.errors.subscribe(changes);
    await commands.deleteTodo('3');
    await commands.deleteTodo('3');
    expect(changes).toHaveBeenCalledTimes(1);
    commands.errors.dismiss();
    expect(commands.errors.getSnapshot()).toBeNull();
    unsubscribe();
    await commands.deleteTodo('3');
    expect(changes).toHaveBeenCalledTimes(2);
  });
});
