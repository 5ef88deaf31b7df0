import { afterEach, describe, expect, it, vi } from 'vitest';
import { enter, recall, refusal, remember, signedInAs, whoAmI } from './account';
import { memoryStorage } from './testing';
import { askForToken, authorization, onSignedOut, withToken } from './token';

const answer = (status: number, body: unknown) =>
  (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;

describe('whoAmI', () => {
  it('tells open mode, a signed-in person and accounts mode without a session apart', async () => {
    expect(await whoAmI(answer(200, { mode: 'open', person: { id: '1', username: 'local' } }))).toEqual({
      mode: 'open',
    });
    const ann = { id: '2', username: 'ann' };
    expect(await whoAmI(answer(200, { mode: 'accounts', person: ann }))).toEqual({
      mode: 'accounts',
      person: ann,
    });
    const refused = { error: { code: 'UNAUTHENTICATED', message: 'sign in', mode: 'accounts' } };
    expect(await whoAmI(answer(401, refused))).toEqual({ mode: 'accounts', person: null });
  });

  it('takes a 401 without accounts for a server behind a token (asked for as always)', async () => {
    const refused = { error: { code: 'UNAUTHENTICATED', message: 'this server requires a bearer token' } };
    expect(await whoAmI(answer(401, refused))).toEqual({ mode: 'open' });
  });
});

describe('signedInAs', () => {
  it('is true only while the session is still that person\'s, and throws without an answer', async () => {
    const ann = { id: '2', username: 'ann' };
    expect(await signedInAs('2', answer(200, { mode: 'accounts', person: ann }))).toBe(true);
    const bob = { id: '3', username: 'bob' };
    expect(await signedInAs('2', answer(200, { mode: 'accounts', person: bob }))).toBe(false);
    const refused = { error: { code: 'UNAUTHENTICATED', message: 'sign in', mode: 'accounts' } };
    expect(await signedInAs('2', answer(401, refused))).toBe(false);
    await expect(signedInAs('2', answer(503, { error: { code: 'DATABASE_UNAVAILABLE' } }))).rejects.toThrow('HTTP 503');
  });
});

describe('enter', () => {
  it('posts the credentials and says why one was refused', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const ok = (async (url: string, init?: RequestInit) => {
      calls.push([url, init]);
      return new Response('{}', { status: 201 });
    }) as unknown as typeof fetch;
    expect(await enter('sign-up', 'ann', 'long enough', ok)).toBeNull();
    expect(calls[0][0]).toBe('/api/auth/sign-up');
    expect(JSON.parse(String(calls[0][1]?.body))).toEqual({ username: 'ann', password: 'long enough' });
    const wrong = answer(401, { error: { code: 'UNAUTHENTICATED', message: 'wrong username or password' } });
    expect(await enter('sign-in', 'ann', 'nope nope', wrong)).toBe('Wrong username or password.');
    const offline = (async () => {
      throw new TypeError('Failed to fetch');
    }) as unknown as typeof fetch;
    expect(await enter('sign-in', 'ann', 'x', offline)).toBe('The server could not be reached.');
  });

  it('words each refusal for a person', () => {
    expect(refusal('sign-up', 409, 'taken')).toBe('That username is taken.');
    const closed = 'this server takes no sign-ups (SIGN_UP=closed): sign in with an account you have';
    expect(refusal('sign-up', 403, closed)).toBe('This server takes no sign-ups: sign in with an account you have.');
    expect(refusal('sign-in', 403, 'forbidden')).toBe('Refused: forbidden');
    expect(refusal('sign-in', 429, undefined)).toMatch(/Too many attempts/);
    expect(refusal('sign-up', 422, 'password: must be 8 to 256 characters')).toBe(
      'Refused: password: must be 8 to 256 characters',
    );
  });
});

describe('a session that ended', () => {
  afterEach(() => vi.restoreAllMocks());

  it('signs in again instead of asking for a token', async () => {
    const prompt = vi.fn();
    vi.stubGlobal('window', { prompt });
    const ended = vi.fn();
    onSignedOut(ended);
    expect(await askForToken()).toBe(false);
    expect(ended).toHaveBeenCalledTimes(1);
    expect(prompt).not.toHaveBeenCalled();
    vi.unstubAllGlobals();
  });

  it('forgets a token kept from before: the server would refuse it beside the cookie', async () => {
    const storage = memoryStorage();
    storage.setItem('graphql-todos.token', 'stale');
    vi.stubGlobal('sessionStorage', storage);
    expect(authorization()).toEqual({ Authorization: 'Bearer stale' });
    onSignedOut(vi.fn());
    expect(await askForToken()).toBe(false);
    expect(authorization()).toEqual({});
    vi.unstubAllGlobals();
  });
});

describe('a socket closed 4401', () => {
  it('signs in again; other closes are passed on and sign no one out', () => {
    const ended = vi.fn();
    onSignedOut(ended);
    const closed = vi.fn();
    const options = withToken({ url: 'ws://x/graphql', on: { closed } });
    options.on?.closed?.({ code: 1006 } as CloseEvent);
    expect(ended).not.toHaveBeenCalled();
    options.on?.closed?.({ code: 4401 } as CloseEvent);
    expect(ended).toHaveBeenCalledTimes(1);
    expect(closed).toHaveBeenCalledTimes(2);
  });
});

describe('remember and recall', () => {
  it('give back the account last remembered: open, a person, or signed out', () => {
    const storage = memoryStorage();
    expect(recall(storage)).toBeNull();
    const ann = { id: '2', username: 'ann' };
    for (const account of [{ mode: 'open' }, { mode: 'accounts', person: ann }, { mode: 'accounts', person: null }] as const) {
      remember(account, storage);
      expect(recall(storage)).toEqual(account);
    }
  });

  it('recall nothing from what is not an account, rather than guess a mode', () => {
    const storage = memoryStorage();
    for (const kept of ['not json', '42', '{"mode": "admin"}', '{"mode": "accounts", "person": {"id": 2}}']) {
      storage.setItem('graphql-todos.account', kept);
      expect(recall(storage)).toBeNull();
    }
  });

  it('remember goes on when the storage refuses', () => {
    const refusing = { setItem: () => { throw new Error('QuotaExceededError'); } };
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(() => remember({ mode: 'open' }, refusing)).not.toThrow();
    expect(warn).toHaveBeenCalled();
    warn.mockRestore();
  });
});
