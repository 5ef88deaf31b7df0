// The graphql-sse client (distinct connections mode) against the live server.
// Usage: node sse.mjs <url> <request JSON> <results to take> [Last-Event-ID]
// Prints each result as one JSON line, then {"complete": true} if the server
// completed the operation before that many arrived.
import { createClient } from 'graphql-sse';

const [url, request, take, lastEventId] = process.argv.slice(2);
const client = createClient({
  url,
  retryAttempts: 0,
  headers: () => (lastEventId ? { 'last-event-id': lastEventId } : {}),
});
let taken = 0;
let completed = true;
for await (const result of client.iterate(JSON.parse(request))) {
  console.log(JSON.stringify(result));
  if (++taken >= Number(take)) {
    completed = false;
    break;
  }
}
if (completed) console.log(JSON.stringify({ complete: true }));
client.dispose();
