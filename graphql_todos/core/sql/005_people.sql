-- People and sign-in (issue 19, phase 1: docs/design/people.md section 8).
-- Accounts only: lists, members, todos.list_id and the journal's new
-- entries (access_revoked among them) come in a later migration.

CREATE TABLE people (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Lower case; the service refuses other spellings (one person per name).
    username      text        NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{1,38}$'),
    -- Argon2id PHC string; NULL: no password sign-in (open mode's person
    -- until `graphql-todos passwd local`).
    password_hash text,
    created_time  timestamptz NOT NULL DEFAULT now()
);

-- The person who owned everything before accounts (open mode acts as it).
INSERT INTO people (id, username) VALUES ('00000000-0000-4000-8000-000000000001', 'local');

-- Sessions (the cookie) and personal access tokens: only sha256 hashes of
-- their secrets are kept, so the table gives no one a credential.
CREATE TABLE sessions (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),   -- shown to its owner, revocable by it
    secret_hash  bytea       NOT NULL UNIQUE,                          -- sha256 of the cookie's 32 random bytes
    person_id    uuid        NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_time timestamptz NOT NULL DEFAULT now(),
    seen_time    timestamptz NOT NULL DEFAULT now(),                   -- idle expiry counts from here
    expires_time timestamptz NOT NULL,                                 -- absolute expiry
    user_agent   text        CHECK (length(user_agent) <= 256),
    address      inet
);
CREATE INDEX sessions_person ON sessions (person_id);

CREATE TABLE access_tokens (
    id           uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
    secret_hash  bytea        NOT NULL UNIQUE,
    person_id    uuid         NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    name         varchar(100) NOT NULL CHECK (btrim(name) <> ''),
    created_time timestamptz  NOT NULL DEFAULT now(),
    used_time    timestamptz,
    expires_time timestamptz
);
CREATE INDEX access_tokens_person ON access_tokens (person_id);

-- Sign-in failures per account and per address, in fixed windows: shared by
-- every process, checked before any password is hashed.
CREATE TABLE sign_in_failures (
    scope        text        NOT NULL CHECK (scope IN ('account', 'address')),
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL,
    PRIMARY KEY (scope, key)
);
