-- Check-in timers (PROTOCOL.md §17, issue 20). Append-only: never edit a
-- migration that has shipped.
--
-- A timer is named by a hash of its own key, made for it alone: nothing
-- here links it to a sender, a report, a reply mailbox or another timer.
-- The relay keeps no time finer than the hour and no time a timer was set
-- or checked in, only the hour it is released.

CREATE TABLE timers (
    -- First 12 bytes of SHA-256("amparo-timer-v1" || timer public key).
    timer        BLOB    PRIMARY KEY CHECK (length(timer) = 12),
    -- Hours since the Unix epoch at which the alert is released.
    release_hour INTEGER NOT NULL,
    -- Sequence number of the last check-in taken (0 before any).
    seq          INTEGER NOT NULL,
    -- The focal point's mailbox the alert is sealed to (read from the
    -- envelope's header, which names it anyway); NULL once cancelled.
    mailbox      BLOB    CHECK (mailbox IS NULL OR length(mailbox) = 12),
    -- The sealed alert (an ordinary envelope, opaque to the relay); NULL
    -- once cancelled. A cancelled timer is kept, without its alert, until
    -- its release hour passes, so a copy of the hold sent again cannot
    -- bring the alert back; a released one is deleted (its hold names an
    -- hour already past, which the relay refuses).
    envelope     BLOB
) WITHOUT ROWID;

CREATE INDEX timers_by_release ON timers (release_hour);
CREATE INDEX timers_by_mailbox ON timers (mailbox) WHERE envelope IS NOT NULL;

-- Timers on record (cancelled ones too: every row counts towards
-- max_timers) and the bytes of the alerts held, which count towards the
-- global cap (max_stored_bytes) beside what waits in mailboxes. Kept by the
-- statements that hold, cancel, release and forget, in their transactions.
ALTER TABLE relay_usage ADD COLUMN timers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE relay_usage ADD COLUMN held_bytes INTEGER NOT NULL DEFAULT 0;
