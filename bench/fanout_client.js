// One fan-out client process: opens COUNT WebSockets to URL and reports, per
// change, when the last of them received it. Driven by bench/fanout.py.
//
//   node fanout_client.js URL PROTOCOL COUNT QUERY   (PROTOCOL: graphql-transport-ws | raw)
//
// stdout lines: "ready OK FAILED", then "event TOKEN RECEIVED FIRST_MS LAST_MS"
// (epoch milliseconds) once every open socket has a change; stdin lines:
// "flush" reports changes not yet everywhere, "close" ends the process.
// The token is the changed row's uuid, found in the frame (PostGraphile's
// relatedNodeId is base64 of ["todos", uuid]). Node's ws costs less client CPU
// per frame than Python's websockets, and the clients share the cores with the servers.
"use strict";
const WebSocket = require("ws");
const readline = require("readline");

const [url, protocol, countArg, query] = process.argv.slice(2);
const count = Number(countArg);
const IN_FLIGHT = 64;
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;
const NODE_ID = /"relatedNodeId":"([^"]+)"/;
const now = () => performance.timeOrigin + performance.now();

const sockets = [];
let open = 0;
let failed = 0;
let started = 0;
const pending = new Map(); // token -> [received, first, last]

function token(text) {
  const direct = UUID.exec(text);
  if (direct) return direct[0];
  const nodeId = NODE_ID.exec(text);
  if (!nodeId) return null;
  const decoded = UUID.exec(Buffer.from(nodeId[1], "base64").toString());
  return decoded && decoded[0];
}

function received(text) {
  const at = now();
  if (protocol !== "raw") {
    if (text.includes('"type":"ping"')) return "pong";
    if (!text.includes('"type":"next"')) return null;
  }
  const key = token(text);
  if (key === null) return null;
  let entry = pending.get(key);
  if (entry === undefined) {
    entry = [0, at, at];
    pending.set(key, entry);
  }
  entry[0] += 1;
  entry[2] = at;
  if (entry[0] === open) {
    pending.delete(key);
    process.stdout.write(`event ${key} ${entry[0]} ${entry[1].toFixed(3)} ${entry[2].toFixed(3)}\n`);
  }
  return null;
}

function settled() {
  if (open + failed === count) process.stdout.write(`ready ${open} ${failed}\n`);
}

function connect() {
  started += 1;
  const ws = new WebSocket(url, protocol === "raw" ? [] : [protocol], { perMessageDeflate: false });
  sockets.push(ws);
  let counted = false;
  const subscribed = () => {
    counted = true;
    open += 1;
    settled();
    if (started < count) connect();
  };
  ws.on("open", () => {
    if (protocol === "raw") subscribed();
    else ws.send(JSON.stringify({ type: "connection_init" }));
  });
  ws.on("message", (data) => {
    const text = data.toString();
    if (!counted && text.includes('"connection_ack"')) {
      ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
      subscribed();
      return;
    }
    if (received(text) === "pong") ws.send('{"type":"pong"}');
  });
  ws.on("error", () => {});
  ws.on("close", () => {
    if (!counted) {
      counted = true;
      failed += 1;
      settled();
      if (started < count) connect();
    }
  });
}

for (let i = 0; i < Math.min(IN_FLIGHT, count); i++) connect();

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line === "flush") {
    for (const [key, [n, first, last]] of pending) {
      process.stdout.write(`event ${key} ${n} ${first.toFixed(3)} ${last.toFixed(3)}\n`);
    }
    pending.clear();
    process.stdout.write("flushed\n");
  } else if (line === "close") {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
}).on("close", () => process.exit(0));
