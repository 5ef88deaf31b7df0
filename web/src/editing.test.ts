import { describe, expect, it } from 'vitest';
import { FSI, PDI } from './bidi';
import { changedElsewhereNotice, renames } from './editing';

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
