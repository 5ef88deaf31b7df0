import 'todomvc-app-css/index.css';
import './app.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient } from 'graphql-ws';
import { endpoints, request, TodoListQuery } from './api';
import { App } from './App';
import { createCommands } from './commands';
import { startOutbox } from './outbox';
import { sendEdit } from './outboxSend';
import { openOutboxStore } from './outboxStore';
import { showWithOutbox } from './shown';
import { startSync } from './sync';
import { withToken } from './token';

// The app shell (this page and its assets) from the service worker's cache when the
// server cannot be reached, so a reload offline still shows the page and its outbox.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker
    .register('/sw.js')
    .catch((error: unknown) => console.info('no offline page', error));
}

async function start() {
  const store = await openOutboxStore();
  // One sync and one outbox per page, started outside React so StrictMode's double
  // effects in development don't open two sockets.
  const sync = startSync({
    url: endpoints().ws,
    createClient: (options) => createClient(withToken(options)),
    loadList: () => request(TodoListQuery),
  });
  const outbox = startOutbox({
    store,
    send: sendEdit,
    // Browsers without Web Locks (none we support today) send from every tab: the
    // numbering still applies each edit once.
    async lock(body) {
      if (navigator.locks) await navigator.locks.request('graphql-todos-outbox', body);
      else await body();
    },
    channel: new BroadcastChannel('graphql-todos'),
    onOnline(listener) {
      window.addEventListener('online', listener);
      return () => window.removeEventListener('online', listener);
    },
  });
  const shown = showWithOutbox(sync, outbox, await store.loadList(), (list) => {
    void store.saveList(list).catch((error: unknown) => console.error('keeping the list', error));
  });
  const commands = createCommands(outbox, () => shown.getSnapshot().list.todos);

  createRoot(document.getElementById('root')!).render(
    <StrictMode>
      <App sync={shown} commands={commands} outbox={outbox} />
    </StrictMode>,
  );
}

void start();
