-- Storage limits (issue 15). Append-only: never edit a migration that has shipped.
-- Same meaning as migrations/sqlite/0003_storage_usage.sql; see the comments there.

CREATE TABLE mailbox_usage (
    mailbox   BYTEA  PRIMARY KEY CHECK (length(mailbox) = 12),
    envelopes BIGINT NOT NULL,
    bytes     BIGINT NOT NULL
);

CREATE TABLE relay_usage (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    envelopes BIGINT  NOT NULL,
    bytes     BIGINT  NOT NULL
);

INSERT INTO mailbox_usage (mailbox, envelopes, bytes)
    SELECT mailbox, count(*), sum(length(body)) FROM envelopes
    WHERE body IS NOT NULL GROUP BY mailbox;

INSERT INTO relay_usage (singleton, envelopes, bytes)
    SELECT 1, count(*), coalesce(sum(length(body)), 0) FROM envelopes WHERE body IS NOT NULL;
