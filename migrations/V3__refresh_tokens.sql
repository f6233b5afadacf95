-- Refresh tokens: opaque, single-use, rotated on every refresh. Only a SHA-256 of each is
-- stored. Tokens minted from one login share a family; presenting a spent token again
-- (a stolen copy racing its owner) revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    family      uuid NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
