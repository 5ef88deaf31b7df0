import { describe, expect, it } from 'vitest';
import { FSI, PDI } from './bidi';
import { changedElsewhereNotice, refusalsOf, renames, type Refusal } from './editing';
import type { Op, Settled } from './outboxStore';

const opened = { title: 'milk', completed: false };

describe('an open editor whose row another page changed', () => {
  it('tells their title, and that saving the draft keeps it over theirs', () => {
    expect(changedElsewhereNotice(opened, { ...opened, title: 'oat milk' }, 'soy milk')).toBe(
      'Changed to “oat milk” elsewhere while you were editing: saving keeps your title, Escape takes theirs',
    );
  });

  it('a draft left as it was: their title told, with nothing of the user’s to keep', () => {
    expect(changedElsewhereNotice(opened, { ...opened, title: 'oat milk' }, ' milk ')).toBe(
      'Changed to “oat milk” elsewhere while you were editing',
    );
  });

  it('tells a completion too, which the editor hides', () => {
    expect(changedElsewhereNotice(opened, { ...opened, completed: true }, 'soy milk')).toBe(
      'Marked completed elsewhere while you were editing',
    );
    expect(changedElsewhereNotice({ ...opened, completed: true }, opened, 'milk')).toBe(
      'Marked active elsewhere while you were editing',
    );
    expect(changedElsewhereNotice(opened, { title: 'oat milk', completed: true }, 'soy milk')).toBe(
      'Changed to “oat milk” and marked completed elsewhere while you were editing: saving keeps your title, Escape takes theirs',
    );
  });

  it('nothing while the row is as it opened, or shows the draft (the user’s own save, before the editor closes)', () => {
    expect(changedElsewhereNotice(opened, opened, 'soy milk')).toBeNull();
    expect(changedElsewhereNotice(opened, { ...opened, title: 'soy milk' }, ' soy milk ')).toBeNull();
  });

  it('their title isolated, so a right-to-left one cannot reorder the sentence', () => {
    expect(changedElsewhereNotice(opened, { ...opened, title: 'חלב' }, 'milk')).toBe(
      `Changed to “${FSI}חלב${PDI}” elsewhere while you were editing`,
    );
  });
});

describe('an open editor whose row the user’s own edit, refused, went back on', () => {
  // The editor opened at 100 on the user's rename still waiting in the outbox.
  const waiting = { ...opened, title: 'x'.repeat(600) };
  const refused = (at: number, edit: Partial<Refusal>): Refusal => ({ at, reason: 'too long', ...edit });

  it('tells the refusal, and blames no other page', () => {
    expect(
      changedElsewhereNotice(waiting, opened, waiting.title, { openedAt: 100, refusals: [refused(150, { title: waiting.title })] }),
    ).toBe('Your change was refused (too long): the title is back to “milk”');
  });

  it('a toggle and a move refused likewise', () => {
    const toggled = { ...opened, completed: true, listId: 'work' };
    const refusals = [refused(150, { completed: true }), refused(160, { listId: 'work', reason: 'gone' })];
    const listName = (id: string) => ({ home: 'home' })[id];
    expect(
      changedElsewhereNotice(toggled, { ...opened, listId: 'home' }, 'milk', { openedAt: 100, refusals, listName }),
    ).toBe('Your change was refused (gone): it is active again and it is back in «home»');
  });

  it('a refusal settled before the editor opened explains nothing: the editor opened on the server’s title', () => {
    expect(
      changedElsewhereNotice(waiting, opened, waiting.title, { openedAt: 200, refusals: [refused(150, { title: waiting.title })] }),
    ).toBe('Changed to “milk” elsewhere while you were editing');
  });

  it('another page’s change meanwhile is still told as theirs, after the refusal', () => {
    expect(
      changedElsewhereNotice(waiting, { ...opened, completed: true }, 'soy milk', {
        openedAt: 100,
        refusals: [refused(150, { title: waiting.title }), refused(150, { title: 'other' })],
      }),
    ).toBe('Your change was refused (too long): the title is back to “milk”. Marked completed elsewhere while you were editing');
  });

  it('the refusals are the row’s refused renames, toggles and moves in the outbox', () => {
    const settled = (seq: number, op: Op, verdict: 'APPLIED' | 'REJECTED', message?: string): Settled => ({
      seq,
      entry: { seq, op, label: 'milk', queuedAt: 0 },
      verdict: { seq, verdict, cursor: null, code: 'BAD_USER_INPUT', message },
      at: seq * 10,
      dismissed: seq === 2,
    });
    const state = {
      queued: [],
      settled: [
        settled(1, { type: 'update', id: 'a', title: 'x' }, 'REJECTED', 'too long'),
        settled(2, { type: 'update', id: 'a', completed: true }, 'REJECTED'),
        settled(3, { type: 'move', id: 'a', listId: 'w', listName: 'work' }, 'REJECTED', 'gone'),
        settled(4, { type: 'update', id: 'a', title: 'y' }, 'APPLIED'),
        settled(5, { type: 'update', id: 'b', title: 'z' }, 'REJECTED', 'no'),
        settled(6, { type: 'delete', id: 'a' }, 'REJECTED', 'no'),
      ],
    };
    expect(refusalsOf(state, 'a')).toEqual([
      { at: 10, reason: 'too long', title: 'x' },
      { at: 20, reason: 'BAD_USER_INPUT', completed: true },
      { at: 30, reason: 'gone', listId: 'w' },
    ]);
  });
});

describe('an open editor whose row another page moved to another list', () => {
  const home = { ...opened, listId: 'home' };

  it('tells where, with the draft kept', () => {
    const listName = (id: string) => ({ work: 'work' })[id];
    expect(changedElsewhereNotice(home, { ...home, listId: 'work' }, 'soy milk', { listName })).toBe(
      'Moved to «work» elsewhere while you were editing',
    );
    expect(changedElsewhereNotice(home, { ...home, title: 'oat milk', listId: 'work' }, 'soy milk', { listName })).toBe(
      'Changed to “oat milk” and moved to «work» elsewhere while you were editing: saving keeps your title, Escape takes theirs',
    );
  });

  it('a row added to the default list, its id not known when the editor opened, is not moved by its id coming', () => {
    expect(changedElsewhereNotice(opened, { ...opened, listId: 'home' }, 'milk')).toBeNull();
  });

  it('a list whose name the page does not know is another list', () => {
    expect(changedElsewhereNotice(home, { ...home, listId: 'theirs' }, 'milk')).toBe(
      'Moved to another list elsewhere while you were editing',
    );
  });
});

describe('saving an editor', () => {
  it('renames with a changed draft, over a title another page set too', () => {
    expect(renames('soy milk', 'milk', 'milk')).toBe(true);
    expect(renames('soy milk', 'milk', 'oat milk')).toBe(true);
  });

  it('keeps the title with the draft the editor opened with, theirs too', () => {
    expect(renames('milk', 'milk', 'milk')).toBe(false);
    expect(renames('milk', 'milk', 'oat milk')).toBe(false);
    expect(renames('oat milk', 'milk', 'oat milk')).toBe(false);
  });
});
