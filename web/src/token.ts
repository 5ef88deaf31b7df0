// The bearer token of a server started with TODOS_TOKEN: asked for when the server refuses
// a request (HTTP 401) or a socket (close 4401), kept for this tab in sessionStorage, and
// sent on every request and socket.
import type { ClientOptions } from 'graphql-ws';

const KEY = 'graphql-todos.token';
// The server's close code for a socket without the token (ErrorCode.UNAUTHENTICATED).
const UNAUTHENTICATED_CLOSE = 4401;

function storage(): Storage | null {
  // Absent outside browsers (the unit tests), and may be disabled by the user.
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** The Authorization header (or connection_init payload) to send: empty without a token. */
export function authorization(): Record<string, string> {
  const token = storage()?.getItem(KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let asking: Promise<boolean> | null = null;
// AUTH=accounts: a refusal means the session ended, and the page signs in again
// (account.ts) instead of asking for a token.
let signedOut: (() => void) | null = null;

/** Instead of asking for a token, call `handler` when the server refuses (401, 4401). */
export function onSignedOut(handler: () => void): void {
  signedOut = handler;
}

/** Ask for the token, once however many requests were refused together; true if given. */
export function askForToken(): Promise<boolean> {
  if (signedOut) {
    // A token kept from an earlier TODOS_TOKEN would be refused beside the
    // new session's cookie too (the first bearer credential decides).
    storage()?.removeItem(KEY);
    signedOut();
    return Promise.resolve(false);
  }
  asking ??= Promise.resolve().then(() => {
    const token = window.prompt('This server needs an access token:')?.trim();
    asking = null;
    if (!token) return false;
    storage()?.setItem(KEY, token);
    return true;
  });
  return asking;
}

/** fetch() with the token; when the server answers 401, ask for it and try once more. */
export async function authorizedFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  const send = () => {
    const headers = new Headers(init.headers);
    Object.entries(authorization()).forEach(([name, value]) => headers.set(name, value));
    return fetch(input, { ...init, headers });
  };
  const response = await send();
  if (response.status !== 401 || !(await askForToken())) return response;
  return send();
}

/** graphql-ws options that present the token in connection_init, and ask for it when refused. */
export function withToken(options: ClientOptions): ClientOptions {
  return {
    ...options,
    connectionParams: authorization,
    on: {
      ...options.on,
      closed: (event) => {
        if ((event as CloseEvent | undefined)?.code === UNAUTHENTICATED_CLOSE) void askForToken();
        options.on?.closed?.(event);
      },
    },
  };
}
