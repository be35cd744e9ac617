-- Privacy Pass admission tokens. Append-only: never edit a migration that
-- has shipped.
-- Same meaning as migrations/sqlite/0007_tokens.sql; see the comments there.
-- The issuance count is a BIGINT, as SQLite's INTEGER is: a count and the
-- tokens added to it are summed without overflow whatever the limit (u32).

CREATE TABLE token_keys (
    epoch  INTEGER PRIMARY KEY,
    sealed BYTEA   NOT NULL
);

CREATE TABLE spent_tokens (
    nullifier BYTEA   PRIMARY KEY CHECK (length(nullifier) = 16),
    key_epoch INTEGER NOT NULL
);

CREATE INDEX spent_tokens_by_epoch ON spent_tokens (key_epoch);

CREATE TABLE token_issuance (
    issuer BYTEA   NOT NULL CHECK (length(issuer) = 16),
    day    INTEGER NOT NULL,
    count  BIGINT  NOT NULL,
    PRIMARY KEY (issuer, day)
);
