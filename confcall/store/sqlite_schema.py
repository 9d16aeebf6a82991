"""The SQLite store's schema: one migration a version (`PRAGMA user_version`)."""

from __future__ import annotations

# Each entry moves the schema from version N to N+1; never edit a released entry, add one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE conferences (
        id TEXT PRIMARY KEY,
        organizer TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'ending', 'ended')),
        created_at REAL NOT NULL,
        ended_at REAL,
        bandwidth_id TEXT,
        closing_text TEXT,
        application_id TEXT NOT NULL
    );
    CREATE INDEX conferences_by_status ON conferences (status, organizer);
    CREATE INDEX conferences_by_end ON conferences (ended_at);
    CREATE TABLE invitees (
        conference_id TEXT NOT NULL REFERENCES conferences (id),
        position INTEGER NOT NULL,
        number TEXT NOT NULL,
        PRIMARY KEY (conference_id, number)
    );
    CREATE INDEX invitees_by_number ON invitees (number);
    CREATE TABLE members (
        call_id TEXT PRIMARY KEY,
        conference_id TEXT NOT NULL REFERENCES conferences (id),
        number TEXT NOT NULL,
        joined_at REAL NOT NULL,
        left_at REAL
    );
    CREATE INDEX members_by_conference ON members (conference_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'complete', 'recap')),
        conference_id TEXT,
        purpose TEXT,
        recipients TEXT,
        body TEXT,
        application_id TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sent', 'failed', 'done')),
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at REAL NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL,
        last_error TEXT,
        message_id TEXT
    );
    CREATE INDEX outbox_by_due ON outbox (status, due_at);
    CREATE INDEX outbox_by_conference ON outbox (conference_id);
    CREATE INDEX outbox_by_message ON outbox (message_id);
    CREATE TABLE deliveries (
        outbox_id INTEGER NOT NULL REFERENCES outbox (id),
        recipient TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (outbox_id, recipient)
    );
    CREATE TABLE inbound (
        message_id TEXT PRIMARY KEY,
        sender TEXT NOT NULL,
        line TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE processed (
        key TEXT PRIMARY KEY,
        at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # An outbox row is leased before it is sent: a send never starts without a write that
    # succeeded, and a lease nobody settled (the sender died) marks the row doubtful: it
    # may have gone out already.
    """
    ALTER TABLE outbox ADD COLUMN leased_until REAL;
    ALTER TABLE outbox ADD COLUMN doubtful INTEGER NOT NULL DEFAULT 0;
    """,
    # Pictures forwarded with a text (an MMS); and "one active conference per organizer"
    # held by the database itself, not only by the code that starts conferences.
    """
    ALTER TABLE outbox ADD COLUMN media TEXT;
    CREATE UNIQUE INDEX one_active_per_organizer ON conferences (organizer)
        WHERE status = 'active';
    """,
    # Numbers that said STOP: never texted again until they say START.
    """
    CREATE TABLE opt_outs (
        number TEXT PRIMARY KEY,
        at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # An outbox row may place a call (RING). SQLite cannot change a CHECK in place: the
    # table is rebuilt (with foreign keys off: see SqliteStore.migrate).
    """
    CREATE TABLE outbox_new (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('text', 'complete', 'recap', 'call')),
        conference_id TEXT,
        purpose TEXT,
        recipients TEXT,
        body TEXT,
        application_id TEXT,
        status TEXT NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'sent', 'failed', 'done')),
        attempts INTEGER NOT NULL DEFAULT 0,
        due_at REAL NOT NULL,
        created_at REAL NOT NULL,
        finished_at REAL,
        last_error TEXT,
        message_id TEXT,
        leased_until REAL,
        doubtful INTEGER NOT NULL DEFAULT 0,
        media TEXT
    );
    INSERT INTO outbox_new SELECT id, kind, conference_id, purpose, recipients, body,
        application_id, status, attempts, due_at, created_at, finished_at, last_error,
        message_id, leased_until, doubtful, media FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_new RENAME TO outbox;
    CREATE INDEX outbox_by_due ON outbox (status, due_at);
    CREATE INDEX outbox_by_conference ON outbox (conference_id);
    CREATE INDEX outbox_by_message ON outbox (message_id);
    """,
    # Recordings (recording.enabled): each of Bandwidth's, with the link the organizer gets.
    """
    ALTER TABLE conferences ADD COLUMN recorded INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE recordings (
        recording_id TEXT PRIMARY KEY,
        conference_id TEXT NOT NULL REFERENCES conferences (id),
        bandwidth_id TEXT NOT NULL,
        status TEXT NOT NULL,
        media_url TEXT NOT NULL,
        duration TEXT NOT NULL DEFAULT '',
        link TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        expires_at REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX recordings_by_conference ON recordings (conference_id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
