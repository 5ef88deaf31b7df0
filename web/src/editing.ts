// An open title editor, and its row changed meanwhile by another page. The row the page
// shows is the server's with the outbox's edits on top (shown.ts), so the user's own
// edits coming back through the stream, the outbox's offline ones replayed too, change
// nothing the editor sees: only another page's edits (another tab's too) do.
import { isolate } from './bidi';
import { normalizeTitle, type Todo } from './todos';

/** What another page may change under an open editor. */
export type Edited = Pick<Todo, 'title' | 'completed'>;

/**
 * The notice of an open editor whose row another page changed since it opened (`opened`
 * as the row was then, `row` as the page shows it now), or null. A title the draft holds
 * is no conflict (the user's own save shows it before the editor closes). A draft the
 * user changed is kept: saving it overwrites their title, Escape takes it.
 */
export function changedElsewhereNotice(opened: Edited, row: Edited, draft: string): string | null {
  const mine = normalizeTitle(draft);
  const retitled = row.title !== opened.title && row.title !== mine;
  const what = [
    retitled && `changed to “${isolate(row.title)}”`,
    row.completed !== opened.completed && `marked ${row.completed ? 'completed' : 'active'}`,
  ].filter(Boolean);
  if (what.length === 0) return null;
  const sentence = `${what.join(' and ')} elsewhere while you were editing`;
  const choice = retitled && mine !== opened.title ? ': saving keeps your title, Escape takes theirs' : '';
  return sentence[0].toUpperCase() + sentence.slice(1) + choice;
}

/**
 * Whether saving the (normalized) `title` renames the row, whose title is now `current`:
 * not when it holds that title, nor when it is still the one the editor opened with
 * (`opened`): a draft left as it was while another page retitled the row keeps theirs.
 */
export function renames(title: string, opened: string, current: string): boolean {
  return title !== current && title !== opened;
}
