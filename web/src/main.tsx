import 'todomvc-app-css/index.css';
import './app.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { startSync } from './sync';

// One sync per page, started outside React so StrictMode's double effects in development
// don't open two sockets.
const sync = startSync();

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App sync={sync} />
  </StrictMode>,
);
