// urql with its defaults (cacheExchange, fetchExchange, and subscriptionExchange
// over graphql-ws, as urql's docs set it up) in the same process as Apollo Client
// (HttpLink, and GraphQLWsLink over graphql-ws): both run the same queries,
// mutations and subscriptions, then close. Any error, an unhandled rejection
// included (urql's teardown once aborted a stream it had been answered with),
// fails the run.
// Usage: node urql_beside_apollo.mjs <http url> <ws url>; prints what each saw.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [httpUrl, wsUrl] = process.argv.slice(2);
const failed = (error) => {
  console.error(error);
  process.exit(1);
};
process.on('unhandledRejection', failed);
process.on('uncaughtException', failed);

const LIST = 'query List { todoList { cursor todos { title } } }';
const CREATE = 'mutation Create($title: String!) { createTodo(input: { title: $title }) { id title } }';
const CHANGES = 'subscription Changes($after: String) { todoChanges(after: $after) { op todo { title } } }';
const TITLES = ['from urql', 'from apollo'];

const urqlSockets = createClient({ url: wsUrl, webSocketImpl: WebSocket });
const urql = new Client({
  url: httpUrl,
  exchanges: [
    cacheExchange,
    fetchExchange,
    subscriptionExchange({
      forwardSubscription(request) {
        const input = { ...request, query: request.query || '' };
        return { subscribe: (sink) => ({ unsubscribe: urqlSockets.subscribe(input, sink) }) };
      },
    }),
  ],
});

const apolloSockets = createClient({ url: wsUrl, webSocketImpl: WebSocket });
const isSubscription = ({ query }) => getMainDefinition(query).operation === 'subscription';
const apollo = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.split(isSubscription, new GraphQLWsLink(apolloSockets), new HttpLink({ uri: httpUrl })),
});

// Each client runs the sequence with its own calls; both answer {data} or throw.
const clients = {
  urql: {
    async query(document, variables = {}) {
      const { data, error } = await urql.query(document, variables, { requestPolicy: 'network-only' }).toPromise();
      if (error) throw error;
      return data;
    },
    async mutate(document, variables) {
      const { data, error } = await urql.mutation(document, variables).toPromise();
      if (error) throw error;
      return data;
    },
    subscribe(document, variables, next) {
      return urql.subscription(document, variables).subscribe((result) => (result.error ? failed(result.error) : next(result.data)));
    },
  },
  apollo: {
    async query(document, variables = {}) {
      return (await apollo.query({ query: gql(document), variables, fetchPolicy: 'network-only' })).data;
    },
    async mutate(document, variables) {
      return (await apollo.mutate({ mutation: gql(document), variables })).data;
    },
    subscribe(document, variables, next) {
      return apollo.subscribe({ query: gql(document), variables }).subscribe({ next: (r) => next(r.data), error: failed });
    },
  },
};

const { cursor } = (await clients.urql.query(LIST)).todoList;
const seen = { urql: [], apollo: [] };
const allSeen = Object.entries(clients).map(
  ([name, client]) =>
    new Promise((resolve) => {
      const subscription = client.subscribe(CHANGES, { after: cursor }, (data) => {
        seen[name].push(data.todoChanges.todo.title);
        if (seen[name].length === TITLES.length) {
          subscription.unsubscribe();
          resolve();
        }
      });
    }),
);
for (const [index, client] of Object.values(clients).entries()) {
  await client.query(LIST);
  await client.mutate(CREATE, { title: TITLES[index] });
}
await Promise.all(allSeen);
const lists = {};
for (const [name, client] of Object.entries(clients)) {
  lists[name] = (await client.query(LIST)).todoList.todos.map((todo) => todo.title);
}
await urqlSockets.dispose();
await apolloSockets.dispose();
apollo.stop();
console.log(JSON.stringify({ seen, lists }));
