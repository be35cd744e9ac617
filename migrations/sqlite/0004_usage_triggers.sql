-- Storage usage kept by the database itself (issue 15.1, speed). Append-only:
-- never edit a migration that has shipped.
--
-- Until now the relay wrote mailbox_usage and relay_usage with statements of
-- its own around every insert, acknowledgement, expiry and forward. These
-- triggers do it instead, row by row, inside the statement that adds or
-- removes a body: a group commit is again one INSERT statement (its own
-- transaction, one round trip to SQLite's thread), and no code path that
-- writes envelopes can leave the usage behind. Rows without a body (an
-- acknowledged envelope's id and hour, rewritten small) count for nothing.
-- Bodies are never updated in place (an acknowledgement deletes the row and
-- writes it again small), so inserts and deletes are all there is to follow.
--
-- An ignored row of INSERT OR IGNORE fires no trigger. The upsert's own
-- conflict target is honoured inside a trigger fired by INSERT OR IGNORE
-- (checked by server/src/store/sqlite.rs tests).

CREATE TRIGGER envelopes_usage_add AFTER INSERT ON envelopes
WHEN NEW.body IS NOT NULL
BEGIN
    INSERT INTO mailbox_usage (mailbox, envelopes, bytes)
        VALUES (NEW.mailbox, 1, length(NEW.body))
        ON CONFLICT (mailbox) DO UPDATE
        SET envelopes = envelopes + 1, bytes = bytes + excluded.bytes;
    UPDATE relay_usage SET envelopes = envelopes + 1, bytes = bytes + length(NEW.body)
        WHERE singleton = 1;
END;

CREATE TRIGGER envelopes_usage_release AFTER DELETE ON envelopes
WHEN OLD.body IS NOT NULL
BEGIN
    UPDATE mailbox_usage
        SET envelopes = max(envelopes - 1, 0), bytes = max(bytes - length(OLD.body), 0)
        WHERE mailbox = OLD.mailbox;
    DELETE FROM mailbox_usage WHERE mailbox = OLD.mailbox AND envelopes <= 0;
    UPDATE relay_usage
        SET envelopes = max(envelopes - 1, 0), bytes = max(bytes - length(OLD.body), 0)
        WHERE singleton = 1;
END;
