-- Acknowledged rows count toward the global cap (issue 15.1). Append-only:
-- never edit a migration that has shipped.
-- Same meaning as migrations/sqlite/0005_acknowledged_rows.sql; see the
-- comments there. Here the relay keeps the count itself, in the statements
-- that acknowledge and expire (after locking the relay_usage row, as every
-- usage writer does).

ALTER TABLE relay_usage ADD COLUMN acknowledged BIGINT NOT NULL DEFAULT 0;

UPDATE relay_usage SET acknowledged = (SELECT count(*) FROM envelopes WHERE body IS NULL)
    WHERE singleton = 1;
