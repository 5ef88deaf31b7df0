// Who the page acts for (AUTH=accounts): `GET /api/auth/me`, and signing up, in and out
// over REST (GraphQL cannot set the session cookie over a WebSocket).
import { authorization } from './token';

export interface Person {
  id: string;
  username: string;
}

/** open: as before accounts (one person, no sign-in); accounts: signed in or not (null). */
export type Account = { mode: 'open' } | { mode: 'accounts'; person: Person | null };

type Fetch = typeof fetch;

/**
 * Asks the server. A 401 that says `mode: "accounts"` means no session: the sign-in page.
 * Any other 401 is a server behind TODOS_TOKEN, which the page asks for as it always has.
 */
export async function whoAmI(fetcher: Fetch = fetch): Promise<Account> {
  const response = await fetcher('/api/auth/me', { headers: authorization() });
  // No answer (a 5xx, a proxy's page): not a mode, and no person either.
  if (response.status >= 500) throw new Error(`HTTP ${response.status}`);
  const body = (await response.json().catch(() => null)) as {
    mode?: string;
    person?: Person | null;
    error?: { mode?: string };
  } | null;
  if (response.status === 401) {
    return body?.error?.mode === 'accounts' ? { mode: 'accounts', person: null } : { mode: 'open' };
  }
  if (body?.mode === 'accounts') return { mode: 'accounts', person: body.person ?? null };
  return { mode: 'open' };
}

// Where the page keeps who it last acted for (see `recall`).
const REMEMBERED = 'graphql-todos.account';

/** Keeps who the server said the page acts for, for the next start without it. */
export function remember(account: Account, storage: Pick<Storage, 'setItem'> = localStorage): void {
  try {
    storage.setItem(REMEMBERED, JSON.stringify(account));
  } catch (error) {
    // Storage full or turned off: the page works, only an offline start knows less.
    console.warn('could not keep the account', error);
  }
}

/**
 * Who the page last acted for, or null: a start without the server (an offline reload,
 * the service worker's page) goes on as that, so an accounts page shows that person's
 * lists and outbox, never open mode's; each send still checks the session (`signedInAs`).
 */
export function recall(storage: Pick<Storage, 'getItem'> = localStorage): Account | null {
  let kept: unknown;
  try {
    kept = JSON.parse(storage.getItem(REMEMBERED) ?? 'null');
  } catch {
    return null;
  }
  if (typeof kept !== 'object' || kept === null) return null;
  const { mode, person } = kept as { mode?: unknown; person?: { id?: unknown; username?: unknown } | null };
  if (mode === 'open') return { mode };
  if (mode !== 'accounts') return null;
  if (person === null) return { mode, person };
  if (typeof person?.id !== 'string' || typeof person.username !== 'string') return null;
  return { mode, person: { id: person.id, username: person.username } };
}

/**
 * Whether this browser's session is still `personId`'s: the cookie is the profile's, and
 * another tab may have signed someone else in since this page started. Throws when the
 * server did not answer (ask again later).
 */
export async function signedInAs(personId: string, fetcher: Fetch = fetch): Promise<boolean> {
  const account = await whoAmI(fetcher);
  return account.mode === 'accounts' && account.person?.id === personId;
}

export type Entry = 'sign-in' | 'sign-up';

/** Signs up or in; null on success (the cookie is set), else what to tell the person. */
export async function enter(
  entry: Entry,
  username: string,
  password: string,
  fetcher: Fetch = fetch,
): Promise<string | null> {
  let response: Response;
  try {
    response = await fetcher(`/api/auth/${entry}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
  } catch {
    return 'The server could not be reached.';
  }
  if (response.ok) return null;
  const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
  return refusal(entry, response.status, body?.error?.message);
}

/** A refused sign-in or sign-up in words a person acts on. */
export function refusal(entry: Entry, status: number, message: string | undefined): string {
  if (status === 429) return 'Too many attempts: wait a while, then try again.';
  if (status === 409) return 'That username is taken.';
  // SIGN_UP=closed (the default beside JWTs): accounts come from the operator or the identity provider.
  if (status === 403 && entry === 'sign-up') return 'This server takes no sign-ups: sign in with an account you have.';
  if (status === 401 && entry === 'sign-in') return 'Wrong username or password.';
  return message ? `Refused: ${message}` : `Refused (HTTP ${status}).`;
}

/** Ends this browser's session. */
export async function signOut(fetcher: Fetch = fetch): Promise<void> {
  await fetcher('/api/auth/sign-out', { method: 'POST' });
}
