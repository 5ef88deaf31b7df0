// The outbox in one tab: edits are queued in IndexedDB (outboxStore.ts) and sent in
// order, each numbered (client id + sequence) so the server applies it once however
// often it is sent. One tab of the profile sends at a time (a Web Lock, held until the
// tab closes); every tab reads the queue and the verdicts from IndexedDB, told to look
// again on a BroadcastChannel. Nothing here waits on a timer to settle an edit: an
// applied edit leaves the overlay when the page's list reaches its verdict's cursor.
import { isolate } from './bidi';
import type { Entry, ListSeen, Op, OutboxStore, Settled, Verdict } from './outboxStore';
import { reached } from './overlay';
import { backoffMs } from './sync';

/** The BroadcastChannel's part we use; tests pass a fake. */
export interface Channel {
  postMessage(message: unknown): void;
  onmessage: ((event: MessageEvent) => void) | null;
  close(): void;
}

export interface OutboxDeps {
  store: OutboxStore;
  /** Sends one numbered edit; rejects when no verdict came back (it is sent again). */
  send(entry: Entry, clientId: string): Promise<Verdict>;
  /** Runs `body` while holding the profile's one outbox lock (navigator.locks). */
  lock(body: () => Promise<void>): Promise<void>;
  channel: Channel;
  /** Calls `listener` when the browser is back online; returns the unsubscribe. */
  onOnline(listener: () => void): () => void;
  /** Whether the browser is online now (navigator.onLine). */
  isOnline(): boolean;
  /** Calls `listener` when the page starts to leave (a reload, a navigation); returns the unsubscribe. */
  onLeave(listener: () => void): () => void;
}

/** What every tab knows of the outbox: all of it comes from IndexedDB. */
export interface OutboxState {
  /** Edits not yet settled, oldest first. */
  queued: readonly Entry[];
  /** The last settled edits, oldest first. */
  settled: readonly Settled[];
}

export interface Outbox {
  /** Queues an edit; resolves once it is stored (it survives a reload from then on). */
  add(op: Op, label: string, list?: ListSeen): Promise<void>;
  getSnapshot(): OutboxState;
  subscribe(listener: () => void): () => void;
  dismiss(seq: number): Promise<void>;
  stop(): void;
}

export const emptyOutbox: OutboxState = { queued: [], settled: [] };

/**
 * The edits the page applies over a list at `listCursor`: the queued ones, and the
 * applied ones whose events the list does not show yet. A rejected edit is rolled back at once. `loadedSince`: the list is a
 * snapshot whose load began then, so it shows every edit settled before, whatever the
 * cursors say (a database reset starts the journal again from 1).
 */
export function pendingEdits(
  state: OutboxState,
  listCursor: string | null,
  loadedSince = -Infinity,
): Entry[] {
  const applied = state.settled
    .filter(
      (s) =>
        s.verdict.verdict === 'APPLIED' &&
        s.at >= loadedSince &&
        !reached(s.verdict.cursor, listCursor),
    )
    .map((s) => s.entry);
  return [...applied, ...state.queued].sort((a, b) => a.seq - b.seq);
}

/**
 * What became of a list the person had (AUTH=accounts): undefined while it is still
 * theirs (or not known), else deleted by its owner, no longer shared with them, or gone
 * from their lists while the page did not see it go (closed or just opened: the server
 * refuses an edit to a deleted list and to an unshared one alike, so it cannot say which).
 */
export type ListFate = (listId: string) => Fate | undefined;

/** A lost list's fate in words, after its «name». */
export const FATE_WORDS = {
  deleted: 'was deleted',
  unshared: 'is no longer shared with you',
  gone: 'is no longer among your lists',
} as const;

/** What became of a list the person lost: FATE_WORDS says each in words. */
export type Fate = keyof typeof FATE_WORDS;

// The server refuses an edit to a list the person lost as it refuses one to a row that
// does not exist (NOT_FOUND: a non-member learns nothing of the list), or as FORBIDDEN
// when the loss committed while the edit was being made.
const LOST_CODES = new Set(['NOT_FOUND', 'FORBIDDEN']);

/** Why `settled` was refused if it was for the loss of its list: the list's fate. */
function lostList({ entry, verdict }: Settled, fate?: ListFate) {
  if (fate === undefined || entry.list === undefined || !LOST_CODES.has(verdict.code ?? '')) return undefined;
  const gone = fate(entry.list.id);
  return gone && { gone, name: entry.list.name };
}

// A row refused as not found is gone (deleted, or with its list) unless its list may only
// have been unshared: then the others still have it.
const rowGone = (gone?: Fate) => gone === undefined || gone === 'deleted';

/**
 * The rejections the page shows until dismissed, each with what the user should know. A
 * delete refused as not found is none: the row is gone, as asked (deleted meanwhile in
 * another tab, by another person, with its list, or while the delete waited for a
 * double-click's end), unless its list was unshared meanwhile: the row is still there,
 * for the others.
 */
export function notices(state: OutboxState, fate?: ListFate): { seq: number; text: string }[] {
  return state.settled
    .filter(
      (s) =>
        s.verdict.verdict === 'REJECTED' &&
        !s.dismissed &&
        !(
          s.verdict.code === 'NOT_FOUND' &&
          s.entry.op.type === 'delete' &&
          rowGone(lostList(s, fate)?.gone)
        ),
    )
    .map((s) => ({ seq: s.seq, text: describeRejection(s, fate) }));
}

const WHAT: Record<Op['type'], string> = {
  create: 'add',
  update: 'change',
  delete: 'delete',
  move: 'move',
  toggleAll: 'update all todos',
  clearCompleted: 'clear completed todos',
};

// Titles (and list names) in notices are cut here, the reason must stay in view, and
// isolated (bidi.ts), the ellipsis inside: it ends the title, on the title's side.
const LABEL_CHARS = 40;
const cut = (text: string) =>
  isolate(text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS)}…` : text);

export function describeRejection(settled: Settled, fate?: ListFate): string {
  const {
    entry: { op, label: title },
    verdict,
  } = settled;
  const label = cut(title);
  const lost = lostList(settled, fate);
  // A delete wins over an edit made meanwhile: the editor is told, in those words (and
  // a deleted list's rows went with it).
  if (verdict.code === 'NOT_FOUND' && op.type === 'update' && rowGone(lost?.gone)) {
    return `“${label}” was deleted, your change was not kept`;
  }
  const list = op.type === 'move' ? `«${cut(op.listName)}»` : '';
  // A move's not found is the row, or the list it was going to deleted or unshared
  // meanwhile: the server cannot say which, so the notice says neither.
  if (verdict.code === 'NOT_FOUND' && op.type === 'move' && lost === undefined) {
    return `“${label}” or ${list} is gone, your move was not kept`;
  }
  // The list the edit was made in went meanwhile: that is the reason, not the server's
  // "no list with id …" nor a row "deleted" that others still have.
  const reason =
    lost === undefined
      ? (verdict.message ?? verdict.code ?? 'refused')
      : `«${cut(lost.name)}» ${FATE_WORDS[lost.gone]}`;
  const to = list === '' ? '' : ` to ${list}`;
  const what = label === '' ? WHAT[op.type] : `${WHAT[op.type]} “${label}”${to}`;
  return `Could not ${what}: ${reason}`;
}

/**
 * The notice for an open editor whose row left the page, with the draft to copy: deleted
 * by another page, its list no longer shared with the person (`gone`, ListFate's), or the
 * row moved by someone else into a list the person does not see (`gone` 'moved').
 */
export function lostDraftNotice(title: string, draft: string, gone?: Fate | 'moved'): string {
  const why =
    gone === 'moved'
      ? 'was moved to a list you do not see while you edited it'
      : gone === undefined || gone === 'deleted'
        ? 'was deleted while you edited it'
        : FATE_WORDS[gone];
  return `“${cut(title)}” ${why}, your change was not kept: “${isolate(draft)}”`;
}

export function startOutbox(deps: OutboxDeps): Outbox {
  const { store, channel } = deps;
  let state = emptyOutbox;
  let stopped = false;
  const listeners = new Set<() => void>();

  // Reads are chained, so an older read never overwrites a newer one.
  let reading = Promise.resolve();
  const refresh = () => {
    reading = reading
      .then(async () => {
        const [queued, settled] = await Promise.all([store.entries(), store.settled()]);
        if (stopped) return;
        state = { queued, settled };
        listeners.forEach((listener) => listener());
      })
      .catch((error: unknown) => console.error('reading the outbox failed', error));
    return reading;
  };

  // The sender sleeps until something may have changed: an edit queued here or in
  // another tab, the browser back online, or the end of a backoff. A nudge while it was
  // reading the queue (which may have missed the new edit) makes the next sleep none.
  // An edit queued offline wakes no one: its send could not succeed (the edit waits in
  // the queue, for the browser back online).
  let nudged = false;
  let wakeUp: () => void = () => {};
  const wake = () => {
    nudged = true;
    wakeUp();
  };
  const queued = () => {
    if (deps.isOnline()) wake();
  };
  const sleep = (ms?: number) =>
    new Promise<void>((resolve) => {
      if (nudged) return resolve();
      const timer = ms === undefined ? undefined : setTimeout(resolve, ms);
      wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  const changed = async () => {
    await refresh();
    channel.postMessage('changed');
  };

  channel.onmessage = () => {
    void refresh();
    queued();
  };
  const offOnline = deps.onOnline(wake);
  // A page on its way out starts no send: its verdict would reach no page (the next
  // one, or another tab, sends the edit again under its number), and a request started
  // while a document unloads got past Chromium's offline emulation
  // (tests/test_web_offline.py saw an edit queued offline applied).
  const offLeave = deps.onLeave(() => outbox.stop());

  const sendAll = async () => {
    // The lock may come after this page stopped (another tab held it).
    if (stopped) return;
    const clientId = await store.clientId();
    let failures = 0;
    while (!stopped) {
      nudged = false;
      let entry: Entry | undefined;
      let verdict: Verdict;
      try {
        entry = await store.first();
        if (entry === undefined) {
          await sleep();
          continue;
        }
        // Stopped while it read the queue: no send starts.
        if (stopped) return;
        verdict = await deps.send(entry, clientId);
      } catch (error) {
        // No verdict (or IndexedDB failed): the same edit again after a while.
        console.info('an edit waits to be sent again', error);
        await sleep(backoffMs(failures++));
        continue;
      }
      failures = 0;
      if (stopped) return;
      try {
        await store.settle(entry, verdict);
      } catch (error) {
        // Sent again later: its number makes the server answer from its record.
        console.error('keeping a verdict failed', error);
        await sleep(backoffMs(failures++));
        continue;
      }
      await changed();
    }
  };

  void refresh();
  void deps.lock(sendAll).catch((error: unknown) => console.error('the outbox sender stopped', error));

  const outbox: Outbox = {
    async add(op, label, list) {
      await store.enqueue(op, label, list);
      await changed();
      queued();
    },
    getSnapshot: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async dismiss(seq) {
      await store.dismiss(seq);
      await changed();
    },
    stop() {
      stopped = true;
      offOnline();
      offLeave();
      channel.onmessage = null;
      wake();
    },
  };
  return outbox;
}
