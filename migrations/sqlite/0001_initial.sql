-- Amparo relay schema, SQLite. Append-only: never edit a migration that has shipped.
--
-- What the relay may know: a mailbox id, a size (implied by the body), and an
-- arrival hour. No addresses, no user agents, no exact times, no batch ids.

CREATE TABLE envelopes (
    -- Cursor for mailbox readers. Within one commit, rows are inserted in
    -- envelope-id order (a hash), so neighbouring cursors say nothing about
    -- which envelopes arrived in the same request.
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- First 16 bytes of SHA-256 of the envelope: the deduplication key.
    id           BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    mailbox      BLOB    NOT NULL CHECK (length(mailbox) = 12),
    -- Hours since the Unix epoch; never finer.
    arrival_hour INTEGER NOT NULL,
    -- The sealed envelope; NULL once acknowledged, when the mailbox is also
    -- zeroed (the id and hour stay until the retention ends, so a late copy
    -- carried by a facilitator gets its receipt again and is not delivered
    -- twice, while nothing records whose mailbox it was).
    body         BLOB
);

CREATE INDEX envelopes_by_mailbox ON envelopes (mailbox, seq) WHERE body IS NOT NULL;
CREATE INDEX envelopes_by_arrival ON envelopes (arrival_hour);

-- The current signed directory (one row).
CREATE TABLE directory (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version   INTEGER NOT NULL,
    body      BLOB    NOT NULL
);

-- Nonces of signed mailbox requests, kept until their timestamps can no
-- longer pass the freshness check, so a captured request cannot be replayed.
CREATE TABLE seen_requests (
    replay_id    BLOB    PRIMARY KEY CHECK (length(replay_id) = 16),
    expires_hour INTEGER NOT NULL
);

CREATE INDEX seen_requests_by_expiry ON seen_requests (expires_hour);
