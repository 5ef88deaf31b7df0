// Apollo Client with its persisted-query link, over HTTP (GET for hashed
// queries) and a graphql-transport-ws link for subscriptions.
// Usage: node apollo.mjs <http url> <ws url>
// Prints {"fetch": {...}} for each HTTP request and {"result": ...} for each
// operation's result, one JSON line each.
import { createHash } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [httpUrl, wsUrl] = process.argv.slice(2);
const print = (value) => console.log(JSON.stringify(value));

async function recordingFetch(url, init) {
  const response = await fetch(url, init);
  const sent = init.method === 'GET' ? Object.fromEntries(new URL(url).searchParams) : JSON.parse(init.body);
  const extensions = typeof sent.extensions === 'string' ? JSON.parse(sent.extensions) : sent.extensions;
  print({ fetch: { method: init.method, query: 'query' in sent, hash: Boolean(extensions?.persistedQuery), status: response.status } });
  return response;
}

const wsClient = createClient({ url: wsUrl, webSocketImpl: WebSocket });
const isSubscription = ({ query }) => {
  const definition = getMainDefinition(query);
  return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
};
const persisted = new PersistedQueryLink({
  sha256: (text) => createHash('sha256').update(text).digest('hex'),
  useGETForHashedQueries: true,
});
const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.split(
    isSubscription,
    persisted.concat(new GraphQLWsLink(wsClient)),
    persisted.concat(new HttpLink({ uri: httpUrl, fetch: recordingFetch })),
  ),
});

const LIST = gql`query List { todoList { cursor todos { id title } } }`;
const CREATE = gql`mutation Create($title: String!) { createTodo(input: { title: $title }) { id title } }`;
const CHANGES = gql`subscription Changes($after: String) { todoChanges(after: $after) { op todo { title } } }`;

const first = await client.query({ query: LIST, fetchPolicy: 'network-only' });
print({ result: first.data });
const changed = new Promise((resolve, reject) => {
  // From the list's cursor: the change made below cannot be missed.
  const subscription = client.subscribe({ query: CHANGES, variables: { after: first.data.todoList.cursor } }).subscribe({
    next: (result) => {
      subscription.unsubscribe();
      resolve(result.data);
    },
    error: reject,
  });
});
const created = await client.mutate({ mutation: CREATE, variables: { title: 'from apollo' } });
print({ result: created.data });
print({ result: await changed });
const second = await client.query({ query: LIST, fetchPolicy: 'network-only' });
print({ result: second.data });
await wsClient.dispose();
