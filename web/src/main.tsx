import 'todomvc-app-css/index.css';
import './app.css';
import { StrictMode } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { createClient } from 'graphql-ws';
import { signOut, whoAmI, type Account } from './account';
import { endpoints, request, TodoListQuery } from './api';
import { App } from './App';
import { followLists, type ListFeedEvent } from './listFeed';
import { createCommands } from './commands';
import { People } from './People';
import { SignIn } from './SignIn';
import { startSync } from './sync';
import { onSignedOut, withToken } from './token';

// One sync per page, started outside React so StrictMode's double effects in development
// don't open two sockets.
const begin = () =>
  startSync({
    url: endpoints().ws,
    createClient: (options) => createClient(withToken(options)),
    loadList: () => request(TodoListQuery),
  });

// Signed in or out, the page starts over: what it holds belongs to the person it was for.
const startOver = () => window.location.assign('/');

function render(root: Root, account: Account): void {
  if (account.mode === 'open') {
    const sync = begin();
    const commands = createCommands(request);
    root.render(
      <StrictMode>
        <App sync={sync} commands={commands} />
      </StrictMode>,
    );
    return;
  }
  if (account.person === null) {
    root.render(<SignIn onEntered={startOver} />);
    return;
  }
  const sync = begin();
  // A refused request or a socket closed 4401: the session ended (signed out elsewhere,
  // revoked, expired). Sign in again, here.
  onSignedOut(() => {
    sync.stop();
    root.render(<SignIn notice="Your session has ended: sign in again." onEntered={startOver} />);
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
    sync.stop();
    void signOut().finally(startOver);
  };
  root.render(
    <StrictMode>
      <People person={account.person} sync={sync} send={request} follow={follow} onSignOut={leave} />
    </StrictMode>,
  );
}

const root = createRoot(document.getElementById('root')!);
// Unreachable: as before accounts, the page starts and shows itself offline until it is.
whoAmI().then(
  (account) => render(root, account),
  () => render(root, { mode: 'open' }),
);
