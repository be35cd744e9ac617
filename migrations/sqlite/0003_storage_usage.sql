-- Storage limits (issue 15). Append-only: never edit a migration that has shipped.
--
-- What waits in each mailbox, and in all of them, kept in the same
-- transaction as every insert, acknowledgement, expiry and forward, so a cap
-- is checked without counting rows. A mailbox's row is deleted when nothing
-- waits in it any more (its envelopes' rows already name it until then; an
-- acknowledged envelope's row does not).

CREATE TABLE mailbox_usage (
    mailbox   BLOB    PRIMARY KEY CHECK (length(mailbox) = 12),
    envelopes INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE relay_usage (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    envelopes INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
);

INSERT INTO mailbox_usage (mailbox, envelopes, bytes)
    SELECT mailbox, count(*), sum(length(body)) FROM envelopes
    WHERE body IS NOT NULL GROUP BY mailbox;

INSERT INTO relay_usage (singleton, envelopes, bytes)
    SELECT 1, count(*), coalesce(sum(length(body)), 0) FROM envelopes WHERE body IS NOT NULL;
