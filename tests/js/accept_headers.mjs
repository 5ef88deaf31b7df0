// Each npm client, as it comes, sends one request to <url>/<client>: the Python
// test (tests/test_negotiation.py) records the Accept header each sends.
// Usage: node accept_headers.mjs <recorder url>; what comes back is not looked at.
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { Client, fetchExchange } from '@urql/core';
import { request } from 'graphql-request';
import { createClient } from 'graphql-sse';

const [url] = process.argv.slice(2);
const QUERY = '{ todos { id } }';
const SUBSCRIPTION = 'subscription { todoChanges { cursor } }';

// urql's subscription answered in JSON never ends: what is awaited is the answer
// reaching its fetch.
let answered;
const urqlAnswered = new Promise((resolve) => {
  answered = resolve;
});
const urqlFetch = async (...args) => {
  const response = await fetch(...args);
  answered();
  return response;
};
const apollo = (path) => new ApolloClient({ cache: new InMemoryCache(), link: new HttpLink({ uri: `${url}/${path}` }) });
new Client({ url: `${url}/urql-fetch-subscriptions`, exchanges: [fetchExchange], fetchSubscriptions: true, fetch: urqlFetch })
  .subscription(SUBSCRIPTION, {})
  .subscribe(() => {});
const sent = [
  new Client({ url: `${url}/urql`, exchanges: [fetchExchange] }).query(QUERY, {}).toPromise(),
  urqlAnswered,
  apollo('apollo').query({ query: gql(QUERY) }),
  new Promise((resolve) => {
    apollo('apollo-multipart').subscribe({ query: gql(SUBSCRIPTION) }).subscribe({ next: resolve, error: resolve, complete: resolve });
  }),
  request(`${url}/graphql-request`, QUERY),
  (async () => {
    for await (const _ of createClient({ url: `${url}/graphql-sse`, retryAttempts: 0 }).iterate({ query: SUBSCRIPTION }));
  })(),
  fetch(`${url}/fetch`),
];
// Each request has reached the recorder once its promise settles.
await Promise.allSettled(sent);
