-- Check-in timers (PROTOCOL.md §17, issue 20). Append-only: never edit a
-- migration that has shipped.
-- Same meaning as migrations/sqlite/0008_timers.sql; see the comments there.

CREATE TABLE timers (
    timer        BYTEA   PRIMARY KEY CHECK (length(timer) = 12),
    release_hour INTEGER NOT NULL,
    seq          BIGINT  NOT NULL,
    mailbox      BYTEA   CHECK (mailbox IS NULL OR length(mailbox) = 12),
    envelope     BYTEA
);

CREATE INDEX timers_by_release ON timers (release_hour);
CREATE INDEX timers_by_mailbox ON timers (mailbox) WHERE envelope IS NOT NULL;

ALTER TABLE relay_usage ADD COLUMN timers BIGINT NOT NULL DEFAULT 0;
ALTER TABLE relay_usage ADD COLUMN held_bytes BIGINT NOT NULL DEFAULT 0;
