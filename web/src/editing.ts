// An open title editor, and its row changed meanwhile. The row the page shows is the
// server's with the outbox's edits on top (shown.ts), so the user's own edits coming back
// through the stream, the outbox's offline ones replayed too, change nothing the editor
// sees: only another page's edits (another tab's too) do, and the user's own edits the
// server refused, rolled back (an editor opened on a rename still waiting in the outbox).
import { isolate } from './bidi';
import type { OutboxState } from './outbox';
import { normalizeTitle, type Todo } from './todos';

/** What may change under an open editor. */
export type Edited = Pick<Todo, 'title' | 'completed' | 'listId'>;

/** One of the user's edits of a row the server refused: what it set, when (Date.now()), why. */
export interface Refusal {
  at: number;
  reason: string;
  title?: string;
  completed?: boolean;
  listId?: string;
}

/** The refused edits of the row `id` in the outbox (its renames, toggles and moves). */
export function refusalsOf(state: OutboxState, id: string): Refusal[] {
  return state.settled.flatMap(({ entry: { op }, verdict, at }): Refusal[] => {
    if (verdict.verdict !== 'REJECTED' || !('id' in op) || op.id !== id) return [];
    const reason = verdict.message ?? verdict.code ?? 'refused';
    if (op.type === 'update') return [{ at, reason, ...('title' in op ? { title: op.title } : { completed: op.completed }) }];
    if (op.type === 'move') return [{ at, reason, listId: op.listId }];
    return [];
  });
}

/** What an open editor knows beside its row: to tell why the row changed. */
export interface Context {
  /** When the editor opened (Date.now()): only refusals since then explain a change. */
  openedAt?: number;
  refusals?: readonly Refusal[];
  /** A list's name, when the page knows it. */
  listName?(id: string): string | undefined;
}

/**
 * The notice of an open editor whose row changed since it opened (`opened` as the row
 * was then, `row` as the page shows it now), or null. A title the draft holds is no
 * conflict (the user's own save shows it before the editor closes). A draft the user
 * changed is kept: saving it overwrites their title, Escape takes it. A change that is
 * the user's own edit refused (the editor opened on it, the server refused it since) is
 * told as that, not as another page's.
 */
export function changedElsewhereNotice(
  opened: Edited,
  row: Edited,
  draft: string,
  { openedAt = Infinity, refusals = [], listName = () => undefined }: Context = {},
): string | null {
  const mine = normalizeTitle(draft);
  const own = refusals.filter((r) => r.at >= openedAt);
  // The last refused edit that set what the editor opened on, now undone.
  const back = (field: 'title' | 'completed' | 'listId') =>
    row[field] === opened[field]
      ? undefined
      : [...own].reverse().find((r) => r[field] !== undefined && r[field] === opened[field]);
  const titleBack = back('title');
  const completedBack = back('completed');
  const movedBack = back('listId');
  const list = (id?: string) => {
    const name = id === undefined ? undefined : listName(id);
    return name === undefined ? undefined : `«${isolate(name)}»`;
  };

  const undone = [
    titleBack && `the title is back to “${isolate(row.title)}”`,
    completedBack && `it is ${row.completed ? 'completed' : 'active'} again`,
    movedBack && `it is back in ${list(row.listId) ?? 'its list'}`,
  ].filter(Boolean);
  // The latest refusal's reason (the one the row went back on last).
  const [refused] = [titleBack, completedBack, movedBack]
    .filter((r) => r !== undefined)
    .sort((a, b) => b.at - a.at);
  const refusal = refused && `Your change was refused (${refused.reason}): ${undone.join(' and ')}`;

  const retitled = !titleBack && row.title !== opened.title && row.title !== mine;
  const what = [
    retitled && `changed to “${isolate(row.title)}”`,
    !completedBack && row.completed !== opened.completed && `marked ${row.completed ? 'completed' : 'active'}`,
    // A row the page added to the default list has no list id until the server's copy
    // comes: its id arriving is no move.
    !movedBack &&
      opened.listId !== undefined &&
      row.listId !== opened.listId &&
      `moved to ${list(row.listId) ?? 'another list'}`,
  ].filter(Boolean);
  let elsewhere: string | undefined;
  if (what.length > 0) {
    const sentence = `${what.join(' and ')} elsewhere while you were editing`;
    const choice = retitled && mine !== opened.title ? ': saving keeps your title, Escape takes theirs' : '';
    elsewhere = sentence[0].toUpperCase() + sentence.slice(1) + choice;
  }
  const told = [refusal, elsewhere].filter(Boolean);
  return told.length === 0 ? null : told.join('. ');
}

/**
 * Whether saving the (normalized) `title` renames the row, whose title is now `current`:
 * not when it holds that title, nor when it is still the one the editor opened with
 * (`opened`): a draft left as it was while another page retitled the row keeps theirs.
 */
export function renames(title: string, opened: string, current: string): boolean {
  return title !== current && title !== opened;
}
