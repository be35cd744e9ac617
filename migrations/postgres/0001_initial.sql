-- Amparo relay schema, PostgreSQL. Append-only: never edit a migration that has shipped.
-- Same meaning as migrations/sqlite/0001_initial.sql; see the comments there.

CREATE TABLE envelopes (
    seq          BIGSERIAL PRIMARY KEY,
    id           BYTEA   NOT NULL UNIQUE CHECK (length(id) = 16),
    mailbox      BYTEA   NOT NULL CHECK (length(mailbox) = 12),
    arrival_hour INTEGER NOT NULL,
    body         BYTEA
);

CREATE INDEX envelopes_by_mailbox ON envelopes (mailbox, seq) WHERE body IS NOT NULL;
CREATE INDEX envelopes_by_arrival ON envelopes (arrival_hour);

CREATE TABLE directory (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version   BIGINT  NOT NULL,
    body      BYTEA   NOT NULL
);

CREATE TABLE seen_requests (
    replay_id    BYTEA   PRIMARY KEY CHECK (length(replay_id) = 16),
    expires_hour INTEGER NOT NULL
);

CREATE INDEX seen_requests_by_expiry ON seen_requests (expires_hour);
