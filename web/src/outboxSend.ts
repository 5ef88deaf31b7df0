// One queued edit as a numbered GraphQL mutation (extensions.mutation = {client, seq}),
// and its reply as a verdict. A reply with no verdict (offline, a timeout, a 5xx, signed
// out) throws: the same request is sent again, and the server applies it once.
import {
  ClearCompletedMutation,
  CreateTodoMutation,
  DeleteTodoMutation,
  endpoints,
  MoveTodoMutation,
  REQUEST_TIMEOUT_MS,
  ToggleAllMutation,
  UpdateTodoMutation,
  type GraphQLErrorLike,
} from './api';
import type { Entry, Op, Verdict } from './outboxStore';
import { authorizedFetch } from './token';

/** The GraphQL request an edit is sent as. */
export function operationOf(op: Op): { query: string; variables: Record<string, unknown> } {
  // A list only when the edit names one: an edit stored without reads as it always did.
  const list = 'listId' in op && op.listId !== undefined ? { listId: op.listId } : {};
  // The rows a list-wide edit names, likewise.
  const ids = 'ids' in op && op.ids !== undefined ? { ids: op.ids } : {};
  switch (op.type) {
    case 'create':
      // The row's id is the client's, so the edits queued after it can name it.
      return {
        query: CreateTodoMutation.toString(),
        variables: { id: op.id, title: op.title, ...list },
      };
    case 'update': {
      const input = 'title' in op ? { title: op.title } : { completed: op.completed };
      return { query: UpdateTodoMutation.toString(), variables: { id: op.id, input } };
    }
    case 'move':
      return { query: MoveTodoMutation.toString(), variables: { id: op.id, listId: op.listId } };
    case 'delete':
      return { query: DeleteTodoMutation.toString(), variables: { id: op.id } };
    case 'toggleAll':
      return { query: ToggleAllMutation.toString(), variables: { completed: op.completed, ...list, ...ids } };
    case 'clearCompleted':
      return { query: ClearCompletedMutation.toString(), variables: { ...list, ...ids } };
  }
}

interface Reply {
  data?: Record<string, unknown> | null;
  errors?: readonly GraphQLErrorLike[];
  extensions?: { cursor?: unknown; mutation?: { verdict?: unknown } };
}

// Answers that are no verdict on the edit, only on this attempt: send it again later.
const TRY_AGAIN = new Set([
  'UNAUTHENTICATED',
  'TOO_MANY_REQUESTS',
  'REQUEST_TIMEOUT',
  'DATABASE_UNAVAILABLE',
  'SHUTTING_DOWN',
]);

/** The verdict in a reply; throws when the reply holds none (the edit is sent again). */
export function verdictOf(entry: Entry, status: number, reply: Reply): Verdict {
  const error = reply.errors?.[0];
  const code = typeof error?.extensions?.code === 'string' ? error.extensions.code : undefined;
  const recorded = reply.extensions?.mutation?.verdict;
  if (recorded === 'APPLIED' || recorded === 'REJECTED') {
    const cursor = reply.extensions?.cursor;
    const verdict: Verdict = {
      seq: entry.seq,
      verdict: recorded,
      cursor: typeof cursor === 'string' ? cursor : null,
    };
    if (code !== undefined) verdict.code = code;
    if (error !== undefined) verdict.message = error.message;
    return verdict;
  }
  if (status >= 500 || code === undefined || TRY_AGAIN.has(code)) {
    throw new Error(`no verdict (HTTP ${status}${code === undefined ? '' : `, ${code}`})`);
  }
  // Refused before it was numbered (a title over the limit fails validation) or a key
  // reused with another request (only a bug does that): settled as rejected, nothing to
  // wait for in the stream.
  if (code === 'IDEMPOTENCY_KEY_REUSED') console.error('an outbox key was reused', entry, reply);
  return { seq: entry.seq, verdict: 'REJECTED', cursor: null, code, message: error?.message ?? code };
}

/** POSTs one numbered edit and reads its verdict. */
export async function sendEdit(entry: Entry, clientId: string): Promise<Verdict> {
  const response = await authorizedFetch(endpoints().http, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({
      ...operationOf(entry.op),
      extensions: { mutation: { client: clientId, seq: entry.seq } },
    }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  let reply: Reply = {};
  try {
    reply = (await response.json()) as Reply;
  } catch {
    // A proxy's HTML error page: no verdict, so the edit is sent again.
  }
  return verdictOf(entry, response.status, reply);
}
