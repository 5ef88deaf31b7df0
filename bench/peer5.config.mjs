// PostGraphile 5, the second peer of `make bench`: the amber preset, a pool of
// 10, and two subscriptions that take the row from the NOTIFY payload of
// bench/peer.sql's triggers (no read per subscriber), as ours delivers the row
// its NOTIFY carries:
//   todoChanges { op todo { ... } }   channel postgraphile:todos
//   todo(id: UUID!) { ... }           channel postgraphile:todo:<id>
// Run by bench/servers.py as `postgraphile -C bench/peer5.config.mjs -c URL`
// with bench/peer5's own Node 22, NODE_ENV=production.
import { createRequire } from "node:module";

// PostGraphile is installed in bench/peer5 (the Makefile's npm ci), not beside
// this file: resolve it from there, the same modules its CLI loads.
const require = createRequire(new URL("./peer5/package.json", import.meta.url));
const { PostGraphileAmberPreset } = require("postgraphile/presets/amber");
const { makePgService } = require("postgraphile/adaptors/pg");
const { extendSchema } = require("postgraphile/utils");
const { context, lambda, listen } = require("postgraphile/grafast");
const { jsonParse } = require("postgraphile/@dataplan/json");

const TodoSubscriptions = extendSchema(() => ({
  typeDefs: /* GraphQL */ `
    extend type Subscription {
      todoChanges: TodoChange!
      todo(id: UUID!): ChangedTodo
    }
    type TodoChange {
      op: String!
      todo: ChangedTodo!
    }
    type ChangedTodo {
      id: UUID!
      title: String!
      completed: Boolean!
      createdTime: Datetime!
      updatedTime: Datetime!
    }
  `,
  objects: {
    Subscription: {
      plans: {
        todoChanges: {
          subscribePlan() {
            return listen(context().get("pgSubscriber"), "postgraphile:todos", jsonParse);
          },
          plan($event) {
            return $event;
          },
        },
        todo: {
          subscribePlan(_$root, fieldArgs) {
            const $topic = lambda(fieldArgs.getRaw("id"), (id) => `postgraphile:todo:${id}`);
            return listen(context().get("pgSubscriber"), $topic, jsonParse);
          },
          plan($event) {
            return $event.get("todo");
          },
        },
      },
    },
    ChangedTodo: {
      plans: {
        createdTime: ($todo) => $todo.get("created_time"),
        updatedTime: ($todo) => $todo.get("updated_time"),
      },
    },
  },
}));

export default {
  extends: [PostGraphileAmberPreset],
  plugins: [TodoSubscriptions],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ["public"],
      pubsub: true,
      // Its connections kept, as ours' pool keeps them: node-postgres closes
      // one idle for 10 s by default, and each run of a sitting came more
      // than 10 s after its last, so it reconnected its pool inside every
      // measured run (docs/bench-ab-harness.md).
      poolConfig: { max: 10, idleTimeoutMillis: 0 },
    }),
  ],
  grafserv: { websockets: true, graphiql: false },
  grafast: { explain: false },
};
