import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  notices,
  pendingEdits,
  startOutbox,
  type Channel,
  type Outbox,
  type OutboxDeps,
  type OutboxState,
} from './outbox';
import { openOutboxStore, type Entry, type OutboxStore, type Verdict } from './outboxStore';
import { overlay } from './overlay';

// A server as the outbox sees it: numbered edits applied once each (a key seen again is
// answered from its record), a rejection for a blank title or a row that is gone.
function fakeServer() {
  const rows = new Map<string, { title: string; completed: boolean }>();
  // The list each moved row is in now, and the lists deleted.
  const listOf = new Map<string, string>();
  const goneLists = new Set<string>();
  const records = new Map<string, Verdict>();
  const applied: { client: string; seq: number }[] = [];
  let position = 0;
  let online = true;
  const send = async (entry: Entry, client: string): Promise<Verdict> => {
    if (!online) throw new TypeError('Failed to fetch');
    const key = `${client}:${entry.seq}`;
    const known = records.get(key);
    if (known) return known;
    const { op } = entry;
    let verdict: Verdict;
    const reject = (code: string, message: string): Verdict => ({
      seq: entry.seq,
      verdict: 'REJECTED',
      cursor: String(position),
      code,
      message,
    });
    if ('title' in op && op.title.trim() === '') {
      verdict = reject('BAD_USER_INPUT', 'title must not be blank');
    } else if ((op.type === 'update' || op.type === 'delete' || op.type === 'move') && !rows.has(op.id)) {
      verdict = reject('NOT_FOUND', `no todo with id ${op.id}`);
    } else if (op.type === 'move' && goneLists.has(op.listId)) {
      verdict = reject('NOT_FOUND', `no list with id ${op.listId}`);
    } else {
      verdict = { seq: entry.seq, verdict: 'APPLIED', cursor: String(++position) };
      if (op.type === 'create') {
        rows.set(op.id, { title: op.title, completed: op.completed });
      } else if (op.type === 'update') {
        rows.set(op.id, { ...rows.get(op.id)!, ...('title' in op ? { title: op.title } : { completed: op.completed }) });
      } else if (op.type === 'delete') {
        rows.delete(op.id);
      } else if (op.type === 'move') {
        listOf.set(op.id, op.listId);
      }
      applied.push({ client, seq: entry.seq });
    }
    records.set(key, verdict);
    return verdict;
  };
  return {
    send,
    rows,
    listOf,
    goneLists,
    applied,
    setOnline: (value: boolean) => (online = value),
  };
}

// navigator.locks, for one profile: one holder at a time, the next waits its turn.
function fakeLock() {
  let held = Promise.resolve();
  return (body: () => Promise<void>) => {
    const run = held.then(body);
    held = run.catch(() => undefined);
    return run;
  };
}

// BroadcastChannel: a message reaches every other channel of the profile, later.
function fakeChannels() {
  const open = new Set<Channel>();
  return () => {
    const channel: Channel = {
      onmessage: null,
      postMessage(message) {
        for (const other of open) {
          if (other !== channel) setTimeout(() => other.onmessage?.(new MessageEvent('message', { data: message })));
        }
      },
      close: () => open.delete(channel),
    };
    open.add(channel);
    return channel;
  };
}

/** Resolves once the outbox's state passes `test`: no timer, it listens. */
function until(outbox: Outbox, test: (state: OutboxState) => boolean): Promise<OutboxState> {
  return new Promise((resolve) => {
    const check = () => {
      const state = outbox.getSnapshot();
      if (!test(state)) return;
      off();
      resolve(state);
    };
    const off = outbox.subscribe(check);
    check();
  });
}

// A browser that says it is online (the fake server may still fail a send).
const online = { onOnline: () => () => undefined, isOnline: () => true };

let dbName = '';
let counter = 0;
const stores: OutboxStore[] = [];
const outboxes: Outbox[] = [];

async function tab(
  server: ReturnType<typeof fakeServer>,
  lock: ReturnType<typeof fakeLock>,
  channel: ReturnType<typeof fakeChannels>,
  send = server.send,
  onLeave: OutboxDeps['onLeave'] = () => () => undefined,
) {
  const store = await openOutboxStore(dbName);
  stores.push(store);
  const outbox = startOutbox({ store, send, lock, channel: channel(), ...online, onLeave });
  outboxes.push(outbox);
  return { store, outbox };
}

beforeEach(() => {
  dbName = `outbox-test-${++counter}`;
  vi.spyOn(console, 'info').mockImplementation(() => undefined);
  vi.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  outboxes.splice(0).forEach((o) => o.stop());
  stores.splice(0).forEach((s) => s.close());
  vi.restoreAllMocks();
});

const create = (title: string) => ({ type: 'create', id: crypto.randomUUID(), title, completed: false }) as const;

describe('the outbox', () => {
  it('sends 100 queued edits in order, each once; one invalid in the middle is rejected with its reason', async () => {
    const server = fakeServer();
    server.setOnline(false);
    const { outbox, store } = await tab(server, fakeLock(), fakeChannels());
    for (let i = 1; i <= 100; i++) await outbox.add(create(i === 50 ? '   ' : `todo ${i}`), `todo ${i}`);
    expect(outbox.getSnapshot().queued).toHaveLength(100);
    server.setOnline(true);
    outbox.add(create('the 101st'), '');
    const state = await until(outbox, (s) => s.queued.length === 0 && s.settled.length === 101);
    expect(server.applied.map((a) => a.seq)).toEqual([...Array(101).keys()].map((i) => i + 1).filter((s) => s !== 50));
    const rejected = state.settled.filter((s) => s.verdict.verdict === 'REJECTED');
    expect(rejected.map((s) => [s.seq, s.verdict.code, s.verdict.message])).toEqual([
      [50, 'BAD_USER_INPUT', 'title must not be blank'],
    ]);
    expect(await store.entries()).toEqual([]);
  });

  it('keeps its edits through a reload, and the next page sends them', async () => {
    const server = fakeServer();
    server.setOnline(false);
    const first = await tab(server, fakeLock(), fakeChannels());
    await first.outbox.add(create('kept'), 'kept');
    await first.outbox.add({ type: 'toggleAll', completed: true }, '');
    first.outbox.stop();
    first.store.close();
    server.setOnline(true);

    const second = await tab(server, fakeLock(), fakeChannels());
    await until(second.outbox, (s) => s.settled.length === 2 && s.queued.length === 0);
    expect(server.applied.map((a) => a.seq)).toEqual([1, 2]);
    expect([...server.rows.values()]).toEqual([{ title: 'kept', completed: false }]);
  });

  it('sends the edits of a row made offline under the id the client gave it', async () => {
    const server = fakeServer();
    server.setOnline(false);
    const { outbox } = await tab(server, fakeLock(), fakeChannels());
    const op = create('eggs');
    await outbox.add(op, 'eggs');
    await outbox.add({ type: 'update', id: op.id, title: 'six eggs' }, 'eggs');
    await outbox.add({ type: 'update', id: op.id, completed: true }, 'six eggs');
    server.setOnline(true);
    outbox.add({ type: 'toggleAll', completed: true }, '');
    await until(outbox, (s) => s.queued.length === 0 && s.settled.length === 4);
    expect([...server.rows.entries()]).toEqual([[op.id, { title: 'six eggs', completed: true }]]);
  });

  it('sends from one tab at a time; the other tabs see every verdict, and nothing twice', async () => {
    const server = fakeServer();
    const lock = fakeLock();
    const channel = fakeChannels();
    server.setOnline(false);
    const a = await tab(server, lock, channel);
    const b = await tab(server, lock, channel);
    for (let i = 0; i < 5; i++) {
      await a.outbox.add(create(`a${i}`), '');
      await b.outbox.add(create(`b${i}`), '');
    }
    server.setOnline(true);
    await b.outbox.add(create('last'), '');
    const done = (s: OutboxState) => s.queued.length === 0 && s.settled.length === 11;
    const [seenByA, seenByB] = await Promise.all([until(a.outbox, done), until(b.outbox, done)]);
    expect(server.applied.map((x) => x.seq)).toEqual([...Array(11).keys()].map((i) => i + 1));
    expect([...server.rows.values()].map((r) => r.title)).toEqual([
      'a0', 'b0', 'a1', 'b1', 'a2', 'b2', 'a3', 'b3', 'a4', 'b4', 'last',
    ]);
    expect(seenByA.settled).toEqual(seenByB.settled);
  });

  it('a tab closed after the server applied an edit but before it heard: the next tab sends it again, applied once', async () => {
    const server = fakeServer();
    const lock = fakeLock();
    const channel = fakeChannels();
    let closing: Outbox | null = null;
    // The first tab's request reaches the server, and the tab closes before the reply.
    const lost = async (entry: Entry, client: string) => {
      await server.send(entry, client);
      closing!.stop();
      throw new TypeError('the tab closed');
    };
    server.setOnline(false);
    const a = await tab(server, lock, channel, lost);
    closing = a.outbox;
    const b = await tab(server, lock, channel);
    await b.outbox.add(create('once'), 'once');
    server.setOnline(true);
    await a.outbox.add(create('twice?'), '');
    await until(b.outbox, (s) => s.queued.length === 0 && s.settled.length === 2);
    expect(server.applied.map((x) => x.seq)).toEqual([1, 2]);
    expect(server.rows.size).toBe(2);
  });

  it('sends an edit queued while the sender was reading an empty queue', async () => {
    const server = fakeServer();
    const store = await openOutboxStore(dbName);
    stores.push(store);
    // The sender's first read finds nothing, and ends only after the edit is queued.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reads = 0;
    let reading: () => void = () => undefined;
    const readStarted = new Promise<void>((resolve) => (reading = resolve));
    const racing: OutboxStore = {
      ...store,
      async first() {
        if (++reads > 1) return store.first();
        reading();
        await held;
        return undefined;
      },
    };
    const outbox = startOutbox({
      store: racing,
      send: server.send,
      lock: fakeLock(),
      channel: fakeChannels()(),
      ...online,
      onLeave: () => () => undefined,
    });
    outboxes.push(outbox);
    await readStarted;
    await outbox.add(create('queued meanwhile'), '');
    release();
    await until(outbox, (s) => s.settled.length === 1);
    expect(server.applied.map((a) => a.seq)).toEqual([1]);
  });

  it('starts no send once its page leaves: the edit waits for another tab, which sends it once', async () => {
    const server = fakeServer();
    server.setOnline(false);
    const lock = fakeLock();
    const channel = fakeChannels();
    let leave: () => void = () => undefined;
    const sends: number[] = [];
    const counted = (entry: Entry, client: string) => {
      sends.push(entry.seq);
      return server.send(entry, client);
    };
    const a = await tab(server, lock, channel, counted, (listener) => {
      leave = listener;
      return () => (leave = () => undefined);
    });
    await a.outbox.add(create('offline'), '');
    await vi.waitFor(() => expect(sends).toContain(1));
    leave();
    const before = [...sends];
    server.setOnline(true);
    // Its backoff ends and another edit is queued: a sender still running would send.
    await a.outbox.add(create('after leaving'), '');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(sends).toEqual(before);
    const b = await tab(server, lock, channel);
    await until(b.outbox, (s) => s.settled.length === 2);
    expect(server.applied.map((x) => x.seq)).toEqual([1, 2]);
  });

  it('starts no send for an edit made offline, here or in another tab; back online the queue goes at once, and an edit made then', async () => {
    const server = fakeServer();
    server.setOnline(false);
    let browserOnline = false;
    let backOnline: () => void = () => undefined;
    const sends: number[] = [];
    const lock = fakeLock();
    const channel = fakeChannels();
    let reads = 0;
    const offline = async (send: OutboxDeps['send']) => {
      const opened = await openOutboxStore(dbName);
      stores.push(opened);
      const store: OutboxStore = {
        ...opened,
        async first() {
          const entry = await opened.first();
          reads++;
          return entry;
        },
      };
      const outbox = startOutbox({
        store,
        send,
        lock,
        channel: channel(),
        onOnline: (listener) => {
          backOnline = listener;
          return () => undefined;
        },
        isOnline: () => browserOnline,
        onLeave: () => () => undefined,
      });
      outboxes.push(outbox);
      return outbox;
    };
    const a = await offline((entry, client) => {
      sends.push(entry.seq);
      return server.send(entry, client);
    });
    const onlineA = backOnline;
    // The lock is a's: b sends nothing, it queues and tells a.
    const b = await offline(server.send);
    // a's sender found the queue empty: asleep until woken.
    await vi.waitFor(() => expect(reads).toBe(1));
    await a.add(create('here'), '');
    await b.add(create('there'), '');
    await until(a, (s) => s.queued.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(sends).toEqual([]);
    browserOnline = true;
    server.setOnline(true);
    // No timer runs in a's sender now: only these wakes send.
    onlineA();
    await until(a, (s) => s.settled.length === 2);
    await a.add(create('online'), '');
    await until(a, (s) => s.settled.length === 3);
    expect(sends).toEqual([1, 2, 3]);
  });

  it('sends a move made offline once though its reply was lost; one into a list deleted meanwhile is rolled back with its notice', async () => {
    const server = fakeServer();
    server.goneLists.add('trip');
    // What reached the server.
    const sent: number[] = [];
    let lose = true;
    const lossy = async (entry: Entry, client: string) => {
      const verdict = await server.send(entry, client);
      sent.push(entry.seq);
      if (entry.op.type === 'move' && lose) {
        lose = false;
        throw new TypeError('the reply was lost');
      }
      return verdict;
    };
    server.setOnline(false);
    const { outbox } = await tab(server, fakeLock(), fakeChannels(), lossy);
    const report = create('report');
    await outbox.add(report, 'report');
    await outbox.add({ type: 'move', id: report.id, listId: 'work', listName: 'work' }, 'report');
    await outbox.add({ type: 'move', id: report.id, listId: 'trip', listName: 'trip' }, 'report');
    server.setOnline(true);
    await outbox.add({ type: 'toggleAll', completed: true, listId: 'work', ids: [report.id] }, '');
    const state = await until(outbox, (s) => s.queued.length === 0 && s.settled.length === 4);
    expect(sent).toEqual([1, 2, 2, 3, 4]);
    expect(server.applied.map((a) => a.seq)).toEqual([1, 2, 4]);
    expect([...server.listOf]).toEqual([[report.id, 'work']]);
    expect(notices(state)).toEqual([{ seq: 3, text: '“report” or «trip» is gone, your move was not kept' }]);
    // Before the stream brings the server's row: shown in the list it went to, not the refused one.
    const shown = overlay([], pendingEdits(state, '0'));
    expect(shown).toEqual([{ id: report.id, title: 'report', completed: true, listId: 'work' }]);
  });

  it('shows a rejection until it is dismissed, in every tab', async () => {
    const server = fakeServer();
    const lock = fakeLock();
    const channel = fakeChannels();
    const a = await tab(server, lock, channel);
    const b = await tab(server, lock, channel);
    await a.outbox.add({ type: 'update', id: 'gone', title: 'x' }, 'milk');
    const rejected = (s: OutboxState) => s.settled.some((x) => x.verdict.code === 'NOT_FOUND' && !x.dismissed);
    await until(b.outbox, rejected);
    await b.outbox.dismiss(1);
    await until(a.outbox, (s) => s.settled.length === 1 && !rejected(s));
  });
});
