-- Privacy Pass admission tokens. Append-only: never edit a migration that
-- has shipped.
--
-- Nothing here names a sender: a token's nullifier is unlinkable to its
-- issuance (blind signatures), and an issuer is an opaque keyed hash, not a
-- key or an address.

-- The issuer key of each key epoch, sealed with the relay's own key. Written
-- once per epoch by whichever relay gets there first; every relay on the
-- database then uses that one, so tokens issued by one are accepted by all.
CREATE TABLE token_keys (
    epoch  INTEGER PRIMARY KEY,
    sealed BLOB    NOT NULL
);

-- Nullifiers of spent tokens, so a token pays for one upload only. Kept
-- until the key epoch they were issued under can no longer be presented.
CREATE TABLE spent_tokens (
    nullifier BLOB    PRIMARY KEY CHECK (length(nullifier) = 16),
    key_epoch INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX spent_tokens_by_epoch ON spent_tokens (key_epoch);

-- Tokens issued per issuer and day (days since the Unix epoch; never
-- finer), against the daily limit. Kept until the day is over.
CREATE TABLE token_issuance (
    issuer BLOB    NOT NULL CHECK (length(issuer) = 16),
    day    INTEGER NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (issuer, day)
) WITHOUT ROWID;
