"""SQL for people, their sessions and access tokens, and sign-in failures
(core/people.py runs it; core/sql/005_people.sql makes the tables, 020
records how each person was made: `origin`)."""

from __future__ import annotations

_INTERVAL = "make_interval(secs => %(idle)s)"
_SESSION_COLUMNS = f"id, created_time, seen_time, least(expires_time, seen_time + {_INTERVAL}) AS expires_time, user_agent"
_LIVE_SESSION = f"expires_time > now() AND seen_time > now() - {_INTERVAL}"

SELECT_PERSON = "SELECT id, username, password_hash FROM people WHERE username = %(username)s"
INSERT_PERSON = """
INSERT INTO people (username, password_hash, origin) VALUES (%(username)s, %(hash)s, 'sign_up')
ON CONFLICT (username) DO NOTHING RETURNING id, username
"""
# A person named by a JWT: found, or made (with no password), with how it
# was made (Accounts.named takes only a JWT's or the operator's). No row when
# another statement made the name and committed after this one began (its
# snapshot cannot see the row its insert waited for): Accounts.named asks again.
NAMED_PERSON = """
WITH made AS (
    INSERT INTO people (username, origin) VALUES (%(username)s, 'jwt') ON CONFLICT (username) DO NOTHING
    RETURNING id, username, origin
)
SELECT id, username, origin FROM made UNION ALL SELECT id, username, origin FROM people WHERE username = %(username)s
"""
# `graphql-todos passwd`: sets it, making the person if new (the operator's);
# signs it out everywhere. An existing person's origin stays: a password
# reset vouches for no one (`graphql-todos vouch` does).
SET_PASSWORD = """
WITH person AS (
    INSERT INTO people (username, password_hash, origin) VALUES (%(username)s, %(hash)s, 'operator')
    ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash
    RETURNING id, (xmax = 0) AS created
), ended AS (
    DELETE FROM sessions WHERE person_id = (SELECT id FROM person)
)
SELECT created FROM person
"""
# `graphql-todos vouch`: the operator says the person is the identity
# provider's of that name, so a JWT naming it signs in as it. No row: no such person.
VOUCH = "UPDATE people SET origin = 'operator' WHERE username = %(username)s RETURNING id"
UPDATE_PASSWORD = "UPDATE people SET password_hash = %(hash)s WHERE id = %(person)s"
INSERT_SESSION = """
INSERT INTO sessions (secret_hash, person_id, expires_time, user_agent, address)
VALUES (%(hash)s, %(person)s, now() + make_interval(secs => %(max)s), %(user_agent)s, %(address)s)
RETURNING id
"""
# A session in use: found, still live, seen now. Also how long it may be
# trusted if unused from now on (the cache keeps it no longer).
SESSION_BY_SECRET = f"""
UPDATE sessions s SET seen_time = now()
FROM people p
WHERE s.secret_hash = %(hash)s AND p.id = s.person_id
  AND s.expires_time > now() AND s.seen_time > now() - {_INTERVAL}
RETURNING s.id, p.id, p.username,
          extract(epoch FROM least(s.expires_time, now() + {_INTERVAL}) - now())::float8
"""
# Which of the sessions and tokens this process holds sockets and streams
# open for are still live (edge/revocation.py), and for how many seconds at
# most they stay so with nothing done (NULL: a token that never expires); an
# open socket is activity: its session is seen again once a quarter of the
# idle time has passed, so it is asked about again by then.
LIVE_HELD = f"""
WITH live_sessions AS (
    SELECT id, expires_time FROM sessions WHERE id = ANY(%(ids)s) AND {_LIVE_SESSION}
), seen AS (
    UPDATE sessions SET seen_time = now()
    WHERE id IN (SELECT id FROM live_sessions) AND seen_time < now() - {_INTERVAL} / 4
)
SELECT id, extract(epoch FROM least(expires_time - now(), {_INTERVAL} / 4))::float8 FROM live_sessions
UNION ALL
SELECT id, extract(epoch FROM expires_time - now())::float8
FROM access_tokens WHERE id = ANY(%(ids)s) AND (expires_time IS NULL OR expires_time > now())
"""
TOKEN_BY_SECRET = """
UPDATE access_tokens t SET used_time = now()
FROM people p
WHERE t.secret_hash = %(hash)s AND p.id = t.person_id AND (t.expires_time IS NULL OR t.expires_time > now())
RETURNING t.id, p.id, p.username, extract(epoch FROM t.expires_time - now())::float8
"""
SELECT_SESSIONS = f"""
SELECT {_SESSION_COLUMNS} FROM sessions WHERE person_id = %(person)s AND {_LIVE_SESSION}
ORDER BY created_time, id
"""
DELETE_SESSION = "DELETE FROM sessions WHERE id = %(id)s AND person_id = %(person)s RETURNING secret_hash"
# A new password ends every session but the one that set it (NULL: all).
DELETE_OTHER_SESSIONS = """
DELETE FROM sessions WHERE person_id = %(person)s AND id IS DISTINCT FROM %(keep)s RETURNING secret_hash
"""
DELETE_DEAD_SESSIONS = f"DELETE FROM sessions WHERE person_id = %(person)s AND NOT ({_LIVE_SESSION})"
_TOKEN_COLUMNS = "id, name, created_time, used_time, expires_time"
INSERT_TOKEN = f"""
INSERT INTO access_tokens (secret_hash, person_id, name, expires_time)
VALUES (%(hash)s, %(person)s, %(name)s, now() + make_interval(days => %(days)s))
RETURNING {_TOKEN_COLUMNS}
"""
SELECT_TOKENS = f"""
SELECT {_TOKEN_COLUMNS} FROM access_tokens
WHERE person_id = %(person)s AND (expires_time IS NULL OR expires_time > now())
ORDER BY created_time, id
"""
DELETE_TOKEN = "DELETE FROM access_tokens WHERE id = %(id)s AND person_id = %(person)s RETURNING secret_hash"

# The failures counted now against an account and an address, and the
# seconds left in each one's window.
SELECT_FAILURES = """
SELECT scope, failures, ceil(extract(epoch FROM window_start + make_interval(secs => %(window)s) - now()))::int
FROM sign_in_failures
WHERE ((scope = 'account' AND key = %(account)s) OR (scope = 'address' AND key = %(address)s))
  AND window_start > now() - make_interval(secs => %(window)s)
"""
# One more failure for each (scope, key); a window that ended starts anew.
RECORD_FAILURE = """
INSERT INTO sign_in_failures (scope, key, window_start, failures)
SELECT scope, key, now(), 1 FROM unnest(%(scopes)s::text[], %(keys)s::text[]) AS f(scope, key)
ON CONFLICT (scope, key) DO UPDATE SET
    window_start = CASE WHEN sign_in_failures.window_start > now() - make_interval(secs => %(window)s)
                        THEN sign_in_failures.window_start ELSE now() END,
    failures = CASE WHEN sign_in_failures.window_start > now() - make_interval(secs => %(window)s)
                    THEN sign_in_failures.failures + 1 ELSE 1 END
"""
# Windows long over count nothing: forgotten, so the table stays small.
PRUNE_FAILURES = "DELETE FROM sign_in_failures WHERE window_start < now() - make_interval(secs => %(window)s)"
RESET_ACCOUNT_FAILURES = "DELETE FROM sign_in_failures WHERE scope = 'account' AND key = %(account)s"
