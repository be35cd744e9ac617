-- A field relay's cache of upstream mailboxes is bounded (issue 15.1).
-- Append-only: never edit a migration that has shipped.
--
-- The bytes the cache holds, kept by triggers as envelopes are cached,
-- evicted, picked up or expired, so that checking the cache's caps reads
-- one row. A relay that is not a field relay leaves it at zero.

CREATE TABLE field_cache_usage (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    bytes     INTEGER NOT NULL
);

INSERT INTO field_cache_usage (singleton, bytes)
    SELECT 1, coalesce(sum(length(body)), 0) FROM mailbox_cache;

CREATE TRIGGER mailbox_cache_usage_add AFTER INSERT ON mailbox_cache
BEGIN
    UPDATE field_cache_usage SET bytes = bytes + length(NEW.body) WHERE singleton = 1;
END;

CREATE TRIGGER mailbox_cache_usage_release AFTER DELETE ON mailbox_cache
BEGIN
    UPDATE field_cache_usage SET bytes = max(bytes - length(OLD.body), 0) WHERE singleton = 1;
END;
