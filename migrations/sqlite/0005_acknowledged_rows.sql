-- Acknowledged rows count toward the global cap (issue 15.1). Append-only:
-- never edit a migration that has shipped.
--
-- An acknowledged (or forwarded) envelope keeps a small row, id and arrival
-- hour, until its retention ends, so that a late copy gets its receipt and
-- is not stored twice. Anyone can make such rows (upload to a mailbox of
-- one's own and acknowledge), so the relay counts them, at a fixed cost
-- each, against max_stored_bytes (server/src/quota.rs,
-- ACKNOWLEDGED_ROW_BYTES). The count is kept by triggers, as the usage is
-- (migration 0004): an acknowledgement deletes the row and writes it again
-- without a body, expiry deletes it.

ALTER TABLE relay_usage ADD COLUMN acknowledged INTEGER NOT NULL DEFAULT 0;

UPDATE relay_usage SET acknowledged = (SELECT count(*) FROM envelopes WHERE body IS NULL)
    WHERE singleton = 1;

CREATE TRIGGER envelopes_acknowledged_add AFTER INSERT ON envelopes
WHEN NEW.body IS NULL
BEGIN
    UPDATE relay_usage SET acknowledged = acknowledged + 1 WHERE singleton = 1;
END;

CREATE TRIGGER envelopes_acknowledged_release AFTER DELETE ON envelopes
WHEN OLD.body IS NULL
BEGIN
    UPDATE relay_usage SET acknowledged = max(acknowledged - 1, 0) WHERE singleton = 1;
END;
