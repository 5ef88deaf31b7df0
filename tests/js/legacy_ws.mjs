// The legacy subscriptions-transport-ws client (what older Apollo links
// used) sending a mutation and a query with `start`.
// Usage: node legacy_ws.mjs <ws url>; prints each result.
import subscriptions from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const [url] = process.argv.slice(2);
const client = new subscriptions.SubscriptionClient(url, { reconnect: false }, WebSocket);
const run = (request) =>
  new Promise((resolve, reject) => {
    client.request(request).subscribe({ next: resolve, error: reject });
  });
console.log(JSON.stringify(await run({ query: 'mutation { createTodo(input: {title: "legacy"}) { title } }' })));
console.log(JSON.stringify(await run({ query: '{ todos { title } }' })));
client.close();
