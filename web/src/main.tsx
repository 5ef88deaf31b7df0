import 'todomvc-app-css/index.css';
import './app.css';
import { StrictMode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { createClient } from 'graphql-ws';
import { recall, remember, signedInAs, signOut, whoAmI, type Account } from './account';
import { endpoints, request, TodoListQuery } from './api';
import { App } from './App';
import { followLists, type ListFeedEvent } from './listFeed';
import { createCommands } from './commands';
import { startOutbox, type Outbox, type OutboxDeps } from './outbox';
import { sendEdit } from './outboxSend';
import { openOutboxStore, type OutboxStore } from './outboxStore';
import { People } from './People';
import { showWithOutbox } from './shown';
import { SignIn } from './SignIn';
import { startSync, type TodoSync } from './sync';
import type { TodoState } from './todos';
import { onSignedOut, withToken } from './token';

// The app shell (this page and its assets) from the service worker's cache when the
// server cannot be reached, so a reload offline still shows the page and its outbox.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker
    .register('/sw.js')
    .catch((error: unknown) => console.info('no offline page', error));
}

// A page leaving stops its outbox (OutboxDeps.onLeave); one the browser brings back
// from its back-forward cache starts again, as a reload.
window.addEventListener('pageshow', (event) => {
  if (event.persisted) window.location.reload();
});

/**
 * The outbox's IndexedDB database, Web Lock and BroadcastChannel: open mode's, or with
 * AUTH=accounts one set per person, so an edit queued for one person is only ever sent
 * by a page signed in as them (never under the next person's session in this browser).
 */
const outboxName = (personId?: string) =>
  personId === undefined ? 'graphql-todos' : `graphql-todos.${personId}`;

// One sync and one outbox per page, started outside React so StrictMode's double
// effects in development don't open two sockets.
function begin(
  name: string,
  { store, stored }: { store: OutboxStore; stored: TodoState | null },
  send: OutboxDeps['send'] = sendEdit,
): { shown: TodoSync; outbox: Outbox } {
  const sync = startSync({
    url: endpoints().ws,
    createClient: (options) => createClient(withToken(options)),
    loadList: () => request(TodoListQuery),
  });
  const outbox = startOutbox({
    store,
    send,
    // Browsers without Web Locks (none we support today) send from every tab: the
    // numbering still applies each edit once.
    async lock(body) {
      if (navigator.locks) await navigator.locks.request(`${name}-outbox`, body);
      else await body();
    },
    channel: new BroadcastChannel(name),
    onOnline(listener) {
      window.addEventListener('online', listener);
      return () => window.removeEventListener('online', listener);
    },
    isOnline: () => navigator.onLine,
    onLeave(listener) {
      window.addEventListener('beforeunload', listener);
      return () => window.removeEventListener('beforeunload', listener);
    },
  });
  const shown = showWithOutbox(sync, outbox, stored, (list) => {
    void store.saveList(list).catch((error: unknown) => console.error('keeping the list', error));
  });
  return { shown, outbox };
}

/** The outbox's store, and the list it kept for a reload before the first load. */
async function openOutbox(name: string) {
  const store = await openOutboxStore(name);
  return { store, stored: await store.loadList() };
}

// Signed in or out, the page starts over: what it holds belongs to the person it was for.
const startOver = () => window.location.assign('/');

async function render(root: Root, account: Account): Promise<void> {
  if (account.mode === 'open') {
    const name = outboxName();
    const { shown, outbox } = begin(name, await openOutbox(name));
    const commands = createCommands(outbox, () => shown.getSnapshot().list.todos);
    root.render(
      <StrictMode>
        <App sync={shown} commands={commands} outbox={outbox} />
      </StrictMode>,
    );
    return;
  }
  if (account.person === null) {
    root.render(<SignIn onEntered={startOver} />);
    return;
  }
  const name = outboxName(account.person.id);
  const opened = await openOutbox(name);
  // Set before the page's first request or socket. A refused request or a socket closed
  // 4401: the session ended (signed out elsewhere, revoked, expired). The outbox stops
  // with the page, its edits kept for this person's next sign-in; sign in again, here.
  const ended = () => {
    page.shown.stop();
    root.render(<SignIn notice="Your session has ended: sign in again." onEntered={startOver} />);
  };
  onSignedOut(ended);
  const person = account.person.id;
  const page = begin(name, opened, async (entry, clientId) => {
    // The session cookie is the profile's: another tab may have signed someone else in
    // since this page started. This person's edits go out only under their session.
    if (!(await signedInAs(person))) {
      ended();
      throw new Error('no longer signed in as the person who made this edit');
    }
    return sendEdit(entry, clientId);
  });
  // The list switcher's own socket, for the feed's list events: it reconnects forever,
  // and each time it does (null) the page reads its lists again.
  const follow = (onEvent: (event: ListFeedEvent | null) => void) => {
    const feed = createClient(
      withToken({
        url: endpoints().ws,
        lazy: false,
        retryAttempts: Infinity,
        shouldRetry: () => true,
        on: { connected: () => onEvent(null) },
      }),
    );
    const unfollow = followLists(feed, onEvent);
    return () => {
      unfollow();
      void feed.dispose();
    };
  };
  const leave = () => {
    page.shown.stop();
    // Signed out here even if the server cannot hear it yet: a reload offline shows sign-in.
    remember({ mode: 'accounts', person: null });
    void signOut().finally(startOver);
  };
  root.render(
    <StrictMode>
      <People
        person={account.person}
        sync={page.shown}
        outbox={page.outbox}
        send={request}
        follow={follow}
        onSignOut={leave}
      />
    </StrictMode>,
  );
}

const root = createRoot(document.getElementById('root')!);
// Unreachable: the page starts as it last was (that person's lists and outbox, or open
// mode as before accounts) and shows itself offline until the server answers.
whoAmI().then(
  (account) => {
    remember(account);
    return render(root, account);
  },
  () => render(root, recall() ?? { mode: 'open' }),
);
