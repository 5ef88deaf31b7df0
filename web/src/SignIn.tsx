// The sign-in / sign-up page (AUTH=accounts, no session). On success the page starts over,
// signed in: the session cookie is what every request and socket then carries.
import { useState, type FormEvent } from 'react';
import { enter, type Entry } from './account';

export function SignIn({ notice, onEntered }: { notice?: string; onEntered(): void }) {
  const [entry, setEntry] = useState<Entry>('sign-in');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const signingUp = entry === 'sign-up';

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setBusy(true);
    const refused = await enter(entry, String(form.get('username')), String(form.get('password')));
    setBusy(false);
    if (refused === null) onEntered();
    else setError(refused);
  };

  return (
    <section className="todoapp sign-in" data-entry={entry}>
      <header className="header">
        <h1>todos</h1>
      </header>
      <form className="sign-in-form" onSubmit={(e) => void submit(e)}>
        <h2>{signingUp ? 'Create an account' : 'Sign in'}</h2>
        {notice && !error && <p className="sign-in-notice">{notice}</p>}
        {error && (
          <p className="sign-in-error" role="alert">
            {error}
          </p>
        )}
        <label>
          Username
          <input name="username" autoComplete="username" required autoFocus />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={signingUp ? 'new-password' : 'current-password'}
            minLength={signingUp ? 8 : undefined}
            required
          />
        </label>
        <button type="submit" className="sign-in-submit" disabled={busy}>
          {signingUp ? 'Create account' : 'Sign in'}
        </button>
        <button
          type="button"
          className="sign-in-switch"
          onClick={() => {
            setEntry(signingUp ? 'sign-in' : 'sign-up');
            setError(null);
          }}
        >
          {signingUp ? 'I have an account: sign in' : 'New here? Create an account'}
        </button>
      </form>
    </section>
  );
}
