-- Field relay (amparo-relay --upstream). Append-only: never edit a migration
-- that has shipped. A central relay leaves these tables empty.
--
-- Every envelope a field relay stores is on its way upstream: it stays in
-- `envelopes` (with its body) until the upstream's receipt for it verifies,
-- then its body is deleted as on an acknowledgement.

-- The upstream's receipts, kept to hand down to the phones that ask (by
-- envelope id, which only someone holding the envelope can know).
CREATE TABLE upstream_receipts (
    id           BLOB    PRIMARY KEY CHECK (length(id) = 16),
    receipt      BLOB    NOT NULL,
    -- Hours since the Unix epoch, for retention; never finer.
    arrival_hour INTEGER NOT NULL
);

CREATE INDEX upstream_receipts_by_arrival ON upstream_receipts (arrival_hour);

-- Sealed envelopes fetched from upstream mailboxes on a phone's behalf, kept
-- so the phone can pick them up again while the upstream is out of reach.
CREATE TABLE mailbox_cache (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           BLOB    NOT NULL UNIQUE CHECK (length(id) = 16),
    mailbox      BLOB    NOT NULL CHECK (length(mailbox) = 12),
    arrival_hour INTEGER NOT NULL,
    body         BLOB    NOT NULL
);

CREATE INDEX mailbox_cache_by_mailbox ON mailbox_cache (mailbox, seq);
CREATE INDEX mailbox_cache_by_arrival ON mailbox_cache (arrival_hour);
