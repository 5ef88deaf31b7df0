// GraphiQL explorer, bundled by Vite from npm: every script, style, font and Monaco worker
// comes from our own /assets/, nothing from a CDN.
import './monaco-workers';
import 'graphiql/style.css';
import '@graphiql/plugin-explorer/style.css';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher, type Fetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { parse, type DocumentNode } from 'graphql';
import { createClient } from 'graphql-ws';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { endpoints } from './api';
import { authorizedFetch, withToken } from './token';

const DEFAULT_QUERY = `# Live changes to the todo list. Run it, then add a todo in another tab.
subscription {
  todoChanges {
    op
    cursor
    todo {
      id
      title
      completed
    }
  }
}

# query {
#   todoList { cursor todos { id title completed } }
# }

# mutation {
#   createTodo(input: { title: "Try GraphiQL" }) { id title }
# }
`;

const { http, ws } = endpoints();
const toolkitFetcher = createGraphiQLFetcher({
  url: http,
  fetch: authorizedFetch,
  // Our own client instance, so the toolkit never has to resolve graphql-ws lazily.
  // No @defer/@stream in our schema: plain JSON responses.
  enableIncrementalDelivery: false,
  wsClient: createClient(withToken({ url: ws, retryAttempts: Infinity, shouldRetry: () => true })),
});

function parseOrNull(query: string): DocumentNode | null {
  try {
    return parse(query);
  } catch {
    return null;
  }
}

// The toolkit picks HTTP or WebSocket from `documentAST`, which GraphiQL re-parses on a
// debounce: run right after an edit and a subscription went over HTTP (or a mutation over
// the socket). Parsing the text actually sent makes the choice match it.
const fetcher: Fetcher = (params, opts) =>
  toolkitFetcher(params, { ...opts, documentAST: parseOrNull(params.query) ?? opts?.documentAST });

const explorer = explorerPlugin();

createRoot(document.getElementById('graphiql')!).render(
  <StrictMode>
    <GraphiQL fetcher={fetcher} plugins={[explorer]} defaultQuery={DEFAULT_QUERY} />
  </StrictMode>,
);
