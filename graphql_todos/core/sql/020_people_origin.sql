-- How each person was made, for what a JWT may name (docs/security.md,
-- "A name signed up before the identity provider's person arrives"): a JWT
-- names its username, so a person made by a password sign-up must not be
-- the one the identity provider later calls by that name (account
-- pre-hijacking: the sign-up's author knows the password).
--   jwt      made on a JWT's first sight: a JWT names it
--   operator made (or vouched for) by the operator, `graphql-todos passwd`
--            or `graphql-todos vouch`: a JWT names it
--   sign_up  made by self-service sign-up: a JWT never names it
--   local    the owner of everything from before accounts: a JWT never names it
-- The default is the safe reading: a row made another way (by hand) is no JWT's.
ALTER TABLE people ADD COLUMN origin text NOT NULL DEFAULT 'sign_up'
    CHECK (origin IN ('jwt', 'operator', 'sign_up', 'local'));

-- Existing rows: no password, only a JWT's first sight made it (or it is
-- local). A password: a sign-up or `passwd`, which nothing recorded apart;
-- read as a sign-up, the reading that hands no one an account. The
-- operator lets a JWT take one that is the same human: `graphql-todos vouch`.
UPDATE people SET origin = CASE WHEN id = '00000000-0000-4000-8000-000000000001' THEN 'local' ELSE 'jwt' END
WHERE id = '00000000-0000-4000-8000-000000000001' OR password_hash IS NULL;
