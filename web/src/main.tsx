import 'todomvc-app-css/index.css';
import './app.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient } from 'graphql-ws';
import { endpoints, request, TodoListQuery } from './api';
import { App } from './App';
import { createCommands } from './commands';
import { startSync } from './sync';
import { withToken } from './token';

// One sync per page, started outside React so StrictMode's double effects in development
// don't open two sockets.
const sync = startSync({
  url: endpoints().ws,
  createClient: (options) => createClient(withToken(options)),
  loadList: () => request(TodoListQuery),
});
const commands = createCommands(request);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App sync={sync} commands={commands} />
  </StrictMode>,
);
