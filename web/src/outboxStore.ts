// The outbox kept in IndexedDB (the `idb` package), so edits made offline survive a
// reload, a closed tab and a browser restart. Every tab of the profile shares it; each
// write is one IndexedDB transaction, so two tabs never take the same sequence number.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { TodoState } from './todos';

/**
 * One user intent, as it will be sent; an update carries only the field it changes. A
 * create names its row (a UUID the client makes), so the edits queued after it can.
 * `listId` (AUTH=accounts) is the list on screen: a create joins it, toggleAll and
 * clearCompleted touch only its rows. Without one (open mode, and every edit stored
 * before lists) the server takes the caller's default list, or all of their rows.
 * `ids` are the rows the user saw when they asked for a list-wide edit: sent later, it
 * changes exactly those (an edit stored before `ids` touches every row, as it did).
 * A move names the list it goes to, and `listName`, that list's name as the user saw it,
 * for messages (as Entry.label); only the ids are sent.
 */
export type Op =
  | { type: 'create'; id: string; title: string; completed: boolean; listId?: string }
  | { type: 'update'; id: string; title: string }
  | { type: 'update'; id: string; completed: boolean }
  | { type: 'delete'; id: string }
  | { type: 'move'; id: string; listId: string; listName: string }
  | { type: 'toggleAll'; completed: boolean; listId?: string; ids?: string[] }
  | { type: 'clearCompleted'; listId?: string; ids?: string[] };

/** A list as the user saw it when they made an edit there (AUTH=accounts), for messages. */
export interface ListSeen {
  id: string;
  name: string;
}

/**
 * A queued edit: `label` is the row's title as the user saw it, for messages; `list`, the
 * list it was made in (none in open mode, and in edits stored before it), likewise: a
 * refusal because that list was unshared meanwhile says so. Neither is sent.
 */
export interface Entry {
  seq: number;
  op: Op;
  label: string;
  list?: ListSeen;
  queuedAt: number;
}

/** What the server made of one numbered mutation. */
export interface Verdict {
  seq: number;
  verdict: 'APPLIED' | 'REJECTED';
  /** Where its effect (or no-op) is in the journal; null when the server recorded nothing. */
  cursor: string | null;
  code?: string;
  message?: string;
}

/**
 * A settled edit, kept so every tab (and a reloaded one) knows it: an applied one stays in
 * the overlay until the page's list reaches its cursor, a rejection is shown until the
 * user dismisses it.
 */
export interface Settled {
  seq: number;
  entry: Entry;
  verdict: Verdict;
  /** When it was settled (Date.now()): a list loaded after that shows it. */
  at: number;
  dismissed: boolean;
}

// Settled edits kept: more than a long offline session sends before its events arrive.
const KEEP_SETTLED = 500;

interface OutboxDB extends DBSchema {
  meta: { key: string; value: unknown };
  outbox: { key: number; value: Entry };
  settled: { key: number; value: Settled };
}

export interface OutboxStore {
  /** This profile's client id, made once. */
  clientId(): Promise<string>;
  /** Takes the next sequence number and queues the edit, in one transaction. */
  enqueue(op: Op, label: string, list?: ListSeen): Promise<Entry>;
  /** The queued edits, oldest first. */
  entries(): Promise<Entry[]>;
  /** The oldest queued edit. */
  first(): Promise<Entry | undefined>;
  /** Moves an edit from the queue to the settled, in one transaction. */
  settle(entry: Entry, verdict: Verdict): Promise<void>;
  /** The settled edits, oldest first (the last KEEP_SETTLED). */
  settled(): Promise<Settled[]>;
  /** The user has read a rejection's notice. */
  dismiss(seq: number): Promise<void>;
  /** The last list the page saw, shown before the first load (an offline reload). */
  saveList(list: TodoState): Promise<void>;
  loadList(): Promise<TodoState | null>;
  close(): void;
}

export async function openOutboxStore(name = 'graphql-todos'): Promise<OutboxStore> {
  const db: IDBPDatabase<OutboxDB> = await openDB<OutboxDB>(name, 1, {
    upgrade(db) {
      db.createObjectStore('meta');
      db.createObjectStore('outbox', { keyPath: 'seq' });
      db.createObjectStore('settled', { keyPath: 'seq' });
    },
  });

  return {
    async clientId() {
      const tx = db.transaction('meta', 'readwrite');
      let id = (await tx.store.get('clientId')) as string | undefined;
      if (id === undefined) {
        id = crypto.randomUUID();
        await tx.store.put(id, 'clientId');
      }
      await tx.done;
      return id;
    },

    async enqueue(op, label, list) {
      const tx = db.transaction(['meta', 'outbox'], 'readwrite');
      const meta = tx.objectStore('meta');
      const seq = ((await meta.get('nextSeq')) as number | undefined) ?? 1;
      await meta.put(seq + 1, 'nextSeq');
      const entry: Entry = { seq, op, label, ...(list && { list }), queuedAt: Date.now() };
      await tx.objectStore('outbox').add(entry);
      await tx.done;
      return entry;
    },

    entries: () => db.getAll('outbox'),
    first: async () => (await db.getAll('outbox', undefined, 1))[0],

    async settle(entry, verdict) {
      const tx = db.transaction(['outbox', 'settled'], 'readwrite');
      await tx.objectStore('outbox').delete(entry.seq);
      const settled = tx.objectStore('settled');
      await settled.put({ seq: entry.seq, entry, verdict, at: Date.now(), dismissed: false });
      const keys = await settled.getAllKeys();
      for (const old of keys.slice(0, Math.max(0, keys.length - KEEP_SETTLED))) {
        await settled.delete(old);
      }
      await tx.done;
    },

    settled: () => db.getAll('settled'),

    async dismiss(seq) {
      const tx = db.transaction('settled', 'readwrite');
      const record = await tx.store.get(seq);
      if (record !== undefined) await tx.store.put({ ...record, dismissed: true });
      await tx.done;
    },

    async saveList(list) {
      await db.put('meta', list, 'list');
    },
    async loadList() {
      return ((await db.get('meta', 'list')) as TodoState | undefined) ?? null;
    },
    close: () => db.close(),
  };
}
