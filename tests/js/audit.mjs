// graphql-http's server audit against a live server: prints one JSON line
// per audit (name, status, reason). Usage: node audit.mjs <url>
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
const results = await Promise.all(serverAudits({ url }).map(async (audit) => ({ name: audit.name, ...(await audit.fn()) })));
for (const result of results) {
  console.log(JSON.stringify({ name: result.name, status: result.status, reason: result.reason ?? null }));
}
