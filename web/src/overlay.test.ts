import { describe, expect, it } from 'vitest';
import { FSI, PDI } from './bidi';
import { describeRejection, lostDraftNotice, notices, pendingEdits, type OutboxState } from './outbox';
import type { Entry, Op, Settled, Verdict } from './outboxStore';
import { todosOf } from './lists';
import { applyOp, overlay, reached } from './overlay';
import type { Todo } from './todos';

const entry = (seq: number, op: Op, label = ''): Entry => ({ seq, op, label, queuedAt: 0 });
const settled = (e: Entry, verdict: Omit<Verdict, 'seq'>): Settled => ({
  seq: e.seq,
  entry: e,
  verdict: { seq: e.seq, ...verdict },
  at: 100,
  dismissed: false,
});
const milk: Todo = { id: 'a', title: 'milk', completed: false };
const bread: Todo = { id: 'b', title: 'bread', completed: true };

describe('per-field merge', () => {
  it('keeps a completion made elsewhere under an offline rename', () => {
    const server = [{ ...milk, completed: true }];
    const shown = overlay(server, [entry(1, { type: 'update', id: 'a', title: 'oat milk' })]);
    expect(shown).toEqual([{ id: 'a', title: 'oat milk', completed: true }]);
  });

  it('keeps a rename made elsewhere under an offline completion', () => {
    const server = [{ ...milk, title: 'soy milk' }];
    const shown = overlay(server, [entry(1, { type: 'update', id: 'a', completed: true })]);
    expect(shown).toEqual([{ id: 'a', title: 'soy milk', completed: true }]);
  });
});

describe('a delete wins', () => {
  it('over an offline edit: the row stays gone, and its rejection tells the editor', () => {
    const edit = entry(1, { type: 'update', id: 'a', title: 'oat milk' }, 'milk');
    expect(overlay([bread], [edit])).toEqual([bread]);
    const rejected = settled(edit, {
      verdict: 'REJECTED',
      cursor: '9',
      code: 'NOT_FOUND',
      message: 'no todo with id a',
    });
    const state: OutboxState = { queued: [], settled: [rejected] };
    expect(pendingEdits(state, '1')).toEqual([]);
    expect(notices(state)).toEqual([{ seq: 1, text: '“milk” was deleted, your change was not kept' }]);
  });

  it('over an edit made elsewhere: an offline delete hides the row whatever the feed says', () => {
    const renamedElsewhere = [{ ...milk, title: 'oat milk' }, bread];
    expect(overlay(renamedElsewhere, [entry(1, { type: 'delete', id: 'a' })])).toEqual([bread]);
  });
});

describe('applyOp', () => {
  it('applies every kind of edit', () => {
    const create = { type: 'create', id: 'c', title: 'eggs', completed: false } as const;
    expect(applyOp([milk], create)).toEqual([milk, { id: 'c', title: 'eggs', completed: false }]);
    // Its event came: not shown twice.
    const withEggs = applyOp([milk], create);
    expect(applyOp(withEggs, create)).toBe(withEggs);
    expect(applyOp([milk, bread], { type: 'toggleAll', completed: true })).toEqual([
      { ...milk, completed: true },
      bread,
    ]);
    expect(applyOp([milk, bread], { type: 'clearCompleted' })).toEqual([milk]);
  });

  it('applies edits in sequence order: a create, then its rename, then a toggle all', () => {
    const shown = overlay(
      [],
      [
        entry(1, { type: 'create', id: 'c', title: 'eggs', completed: false }),
        entry(2, { type: 'update', id: 'c', title: 'six eggs' }),
        entry(3, { type: 'toggleAll', completed: true }),
      ],
    );
    expect(shown).toEqual([{ id: 'c', title: 'six eggs', completed: true }]);
  });

  it('keeps an edit that names a list (AUTH=accounts) to that list', () => {
    const home = { ...milk, listId: 'home' };
    const work = { ...bread, id: 'w', listId: 'work' };
    const workOpen = { ...milk, id: 'o', listId: 'work' };
    const create = { type: 'create', id: 'c', title: 'eggs', completed: false, listId: 'work' } as const;
    expect(applyOp([home], create)).toEqual([home, { id: 'c', title: 'eggs', completed: false, listId: 'work' }]);
    expect(applyOp([home, workOpen], { type: 'toggleAll', completed: true, listId: 'work' })).toEqual([
      home,
      { ...workOpen, completed: true },
    ]);
    const doneAtHome = { ...home, completed: true };
    expect(applyOp([doneAtHome, work], { type: 'clearCompleted', listId: 'work' })).toEqual([doneAtHome]);
  });

  it('keeps a list-wide edit that names its rows to those rows (a row added since is left alone)', () => {
    const doneMilk = { ...milk, completed: true };
    const eggs = { id: 'e', title: 'eggs', completed: false };
    expect(applyOp([milk, eggs], { type: 'toggleAll', completed: true, ids: [milk.id] })).toEqual([
      doneMilk,
      eggs,
    ]);
    const doneEggs = { ...eggs, completed: true };
    expect(applyOp([doneMilk, doneEggs], { type: 'clearCompleted', ids: [milk.id, 'gone'] })).toEqual([doneEggs]);
  });
});

describe('a move', () => {
  const home = { ...milk, listId: 'home' };
  const move = entry(1, { type: 'move', id: 'a', listId: 'work', listName: 'work' }, 'milk');

  it('takes the row out of the list on screen at once, into the one it goes to', () => {
    const shown = overlay([home, { ...bread, listId: 'home' }], [move]);
    expect(todosOf(shown, 'home').map((t) => t.id)).toEqual(['b']);
    expect(todosOf(shown, 'work')).toEqual([{ ...milk, listId: 'work' }]);
  });

  it('sets only the row\'s list: a rename and a completion made elsewhere stay', () => {
    const changedElsewhere = { ...home, title: 'oat milk', completed: true };
    expect(overlay([changedElsewhere], [move])).toEqual([{ ...changedElsewhere, listId: 'work' }]);
  });

  it('of a row deleted meanwhile changes nothing; of one deleted here, the delete wins', () => {
    expect(overlay([bread], [move])).toEqual([bread]);
    expect(overlay([home], [entry(1, { type: 'delete', id: 'a' }), { ...move, seq: 2 }])).toEqual([]);
  });

  it('is rolled back at once when refused, with a notice naming the row and the list', () => {
    const refused = settled(move, {
      verdict: 'REJECTED',
      cursor: '9',
      code: 'FORBIDDEN',
      message: 'a viewer may not change this list',
    });
    const state: OutboxState = { queued: [], settled: [refused] };
    expect(overlay([home], pendingEdits(state, '1'))).toEqual([home]);
    expect(notices(state)).toEqual([
      { seq: 1, text: 'Could not move “milk” to «work»: a viewer may not change this list' },
    ]);
    const gone = settled(move, { verdict: 'REJECTED', cursor: '9', code: 'NOT_FOUND', message: 'no list with id work' });
    expect(describeRejection(gone)).toBe('“milk” or «work» is gone, your move was not kept');
  });

  it('stays over the list until the list reaches its cursor', () => {
    const applied = settled(move, { verdict: 'APPLIED', cursor: '12' });
    const state: OutboxState = { queued: [], settled: [applied] };
    expect(todosOf(overlay([home], pendingEdits(state, '11')), 'home')).toEqual([]);
    // The stream's event brought the row in its new list.
    const moved = { ...milk, listId: 'work' };
    expect(overlay([moved], pendingEdits(state, '12'))).toEqual([moved]);
  });
});

describe('pendingEdits', () => {
  const create = entry(1, { type: 'create', id: 'c', title: 'eggs', completed: false });
  const applied = settled(create, { verdict: 'APPLIED', cursor: '12' });

  it('keeps an applied edit until the list reaches its cursor', () => {
    const state: OutboxState = { queued: [entry(2, { type: 'delete', id: 'b' })], settled: [applied] };
    expect(pendingEdits(state, '11').map((e) => e.op)).toEqual([
      { type: 'create', id: 'c', title: 'eggs', completed: false },
      { type: 'delete', id: 'b' },
    ]);
    expect(pendingEdits(state, '12').map((e) => e.seq)).toEqual([2]);
    expect(pendingEdits(state, '13').map((e) => e.seq)).toEqual([2]);
  });

  it('drops an applied edit from a list loaded after it settled, whatever the cursors', () => {
    // A database reset started the journal again: the new list's cursor is below the verdict's.
    const state: OutboxState = { queued: [], settled: [applied] };
    expect(pendingEdits(state, '1', 100)).toHaveLength(1);
    expect(pendingEdits(state, '1', 101)).toEqual([]);
  });

  it('rolls a rejected edit back at once', () => {
    const rejected = settled(create, { verdict: 'REJECTED', cursor: '12', code: 'BAD_USER_INPUT' });
    expect(pendingEdits({ queued: [], settled: [rejected] }, '1')).toEqual([]);
  });

  it('compares cursors as numbers, beyond 2^53', () => {
    expect(reached('9007199254740993', '9007199254740992')).toBe(false);
    expect(reached('9007199254740993', '9007199254740993')).toBe(true);
    expect(reached('10', '9')).toBe(false);
    expect(reached('12', null)).toBe(false);
    // Settled with nothing to wait for (refused before it was recorded).
    expect(reached(null, null)).toBe(true);
  });
});

describe('notices', () => {
  it('say what was refused and why, until dismissed', () => {
    const create = entry(4, { type: 'create', id: 'x', title: ' ', completed: false }, ' ');
    const rejected = settled(create, {
      verdict: 'REJECTED',
      cursor: '0',
      code: 'BAD_USER_INPUT',
      message: 'title must not be blank',
    });
    expect(describeRejection(rejected)).toBe('Could not add “ ”: title must not be blank');
    const clear = settled(entry(5, { type: 'clearCompleted' }), {
      verdict: 'REJECTED',
      cursor: null,
      code: 'FORBIDDEN',
      message: 'not yours',
    });
    expect(describeRejection(clear)).toBe('Could not clear completed todos: not yours');
    expect(notices({ queued: [], settled: [{ ...rejected, dismissed: true }] })).toEqual([]);
    const long = settled(entry(6, { type: 'delete', id: 'x' }, 'y'.repeat(41)), {
      verdict: 'REJECTED',
      cursor: null,
      code: 'FORBIDDEN',
      message: 'not yours',
    });
    expect(describeRejection(long)).toBe(`Could not delete “${'y'.repeat(40)}…”: not yours`);
  });

  it('say nothing of a delete refused as not found: the row is gone, as asked', () => {
    const gone = settled(entry(7, { type: 'delete', id: 'x' }, 'milk'), {
      verdict: 'REJECTED',
      cursor: null,
      code: 'NOT_FOUND',
      message: 'no todo with id x',
    });
    const forbidden = settled(entry(8, { type: 'delete', id: 'y' }, 'bread'), {
      verdict: 'REJECTED',
      cursor: null,
      code: 'FORBIDDEN',
      message: 'not yours',
    });
    expect(notices({ queued: [], settled: [gone, forbidden] })).toEqual([
      { seq: 8, text: 'Could not delete “bread”: not yours' },
    ]);
  });

  it('isolate right-to-left titles and list names (bidi.ts), so the sentence keeps its order', () => {
    const title = 'אבג 123';
    const edit = entry(7, { type: 'update', id: 'a', title: 'x' }, title);
    const deleted = settled(edit, { verdict: 'REJECTED', cursor: '9', code: 'NOT_FOUND' });
    expect(describeRejection(deleted)).toBe(`“${FSI}${title}${PDI}” was deleted, your change was not kept`);
    const move = entry(8, { type: 'move', id: 'a', listId: 'w', listName: 'עבודה!' }, 'milk');
    const forbidden = { verdict: 'REJECTED', cursor: '9', code: 'FORBIDDEN', message: 'not yours' } as const;
    expect(describeRejection(settled(move, forbidden))).toBe(
      `Could not move “milk” to «${FSI}עבודה!${PDI}»: not yours`,
    );
    const gone = settled(move, { verdict: 'REJECTED', cursor: '9', code: 'NOT_FOUND' });
    expect(describeRejection(gone)).toBe(`“milk” or «${FSI}עבודה!${PDI}» is gone, your move was not kept`);
    // Cut, the ellipsis inside the isolate: it ends the title, on the title's side.
    const long = settled(entry(9, { type: 'delete', id: 'x' }, 'ש'.repeat(41)), forbidden);
    expect(describeRejection(long)).toBe(`Could not delete “${FSI}${'ש'.repeat(40)}…${PDI}”: not yours`);
  });
});

describe('an edit made in a list the person lost meanwhile', () => {
  const trip = { id: 't', name: 'trip' };
  const inTrip = (seq: number, op: Op, label: string): Entry => ({ ...entry(seq, op, label), list: trip });
  const notFound = { verdict: 'REJECTED', cursor: null, code: 'NOT_FOUND', message: 'no list with id t' } as const;
  const edits = [
    settled(inTrip(1, { type: 'create', id: 'c', title: 'passport', completed: false, listId: 't' }, 'passport'), notFound),
    settled(inTrip(2, { type: 'update', id: 'a', completed: true }, 'tickets'), notFound),
    settled(inTrip(3, { type: 'delete', id: 'b' }, 'visa'), notFound),
    settled(inTrip(4, { type: 'clearCompleted', listId: 't', ids: ['a'] }, ''), notFound),
  ];
  const state: OutboxState = { queued: [], settled: edits };

  it('unshared: each is refused for that reason, the delete too (the others still have the row)', () => {
    expect(notices(state, () => 'unshared').map((n) => n.text)).toEqual([
      'Could not add “passport”: «trip» is no longer shared with you',
      'Could not change “tickets”: «trip» is no longer shared with you',
      'Could not delete “visa”: «trip» is no longer shared with you',
      'Could not clear completed todos: «trip» is no longer shared with you',
    ]);
  });

  it('deleted: its rows went with it, so a delete needs no notice and a change was of a deleted row', () => {
    expect(notices(state, () => 'deleted').map((n) => n.text)).toEqual([
      'Could not add “passport”: «trip» was deleted',
      '“tickets” was deleted, your change was not kept',
      'Could not clear completed todos: «trip» was deleted',
    ]);
  });

  it('gone while the page was closed: neither deleted nor unshared is claimed, and the delete is told', () => {
    // The server refuses both alike: "no longer shared" would send them asking for a list
    // its owner deleted, "was deleted" would hide that the others still have the row.
    expect(notices(state, () => 'gone').map((n) => n.text)).toEqual([
      'Could not add “passport”: «trip» is no longer among your lists',
      'Could not change “tickets”: «trip» is no longer among your lists',
      'Could not delete “visa”: «trip» is no longer among your lists',
      'Could not clear completed todos: «trip» is no longer among your lists',
    ]);
    expect(lostDraftNotice('tickets', 'tickets for two', 'gone')).toBe(
      '“tickets” is no longer among your lists, your change was not kept: “tickets for two”',
    );
  });

  it('still theirs (or an edit kept before lists were remembered): the server’s reason, as before', () => {
    const before = ['Could not add “passport”: no list with id t', '“tickets” was deleted, your change was not kept'];
    expect(notices(state, () => undefined).map((n) => n.text).slice(0, 2)).toEqual(before);
    expect(notices(state).map((n) => n.text).slice(0, 2)).toEqual(before);
    // A refusal for another reason keeps it, the list gone or not.
    const blank = settled(inTrip(5, { type: 'update', id: 'a', title: ' ' }, 'tickets'), {
      verdict: 'REJECTED',
      cursor: null,
      code: 'BAD_USER_INPUT',
      message: 'title must not be blank',
    });
    expect(describeRejection(blank, () => 'unshared')).toBe('Could not change “tickets”: title must not be blank');
  });
});

describe('an open editor whose row left the page', () => {
  it('shows the draft, with the reason: deleted, or its list no longer shared', () => {
    const draft = 'tickets for two';
    expect(lostDraftNotice('tickets', draft)).toBe(
      '“tickets” was deleted while you edited it, your change was not kept: “tickets for two”',
    );
    expect(lostDraftNotice('tickets', draft, 'deleted')).toBe(lostDraftNotice('tickets', draft));
    expect(lostDraftNotice('tickets', draft, 'moved')).toBe(
      '“tickets” was moved to a list you do not see while you edited it, your change was not kept: “tickets for two”',
    );
    expect(lostDraftNotice('tickets', draft, 'unshared')).toBe(
      '“tickets” is no longer shared with you, your change was not kept: “tickets for two”',
    );
    // The draft whole (it is there to be copied), isolated; the title cut.
    expect(lostDraftNotice('t'.repeat(41), 'אבג 123')).toBe(
      `“${'t'.repeat(40)}…” was deleted while you edited it, your change was not kept: “${FSI}אבג 123${PDI}”`,
    );
  });
});
