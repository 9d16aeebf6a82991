"""The SQL both stores write with, in the dialect SQLite and PostgreSQL share: every write
an event or the outbox makes (`SqlWrites`: claim, read, decide, apply the effects; lease
and settle outbox rows); the reads are in sql_reads.py. Statements use `?` for their
parameters; the PostgreSQL store turns them into `%s`. What differs between the two is
only how a store opens, commits, locks and caches, in sqlite.py and postgres.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from confcall.conference import (
    FOLLOW_UP,
    NOTHING_READ,
    AddInvitees,
    BeginEnding,
    Decision,
    Effect,
    FinishConference,
    OptIn,
    OptOut,
    QueueCall,
    QueueCompletion,
    QueueRecapTimer,
    QueueText,
    RecordBandwidthId,
    RecordDelivery,
    RecordJoin,
    RecordLeave,
    RecordRecording,
    Rules,
    Sender,
    StartConference,
)
from confcall.events import Event, TextReceived
from confcall.handle import Entry, Reads, entry
from confcall.state import ENDED, ENDING, Conference
from confcall.store.model import (
    ANSWERS,
    CALL,
    COMPLETE,
    RECAP,
    RETRY,
    TEXT,
    OutboxRow,
    Settlement,
)
from confcall.store.sql_reads import SqlReads, larger, not_in, outbox_row, smaller


class SqlWrites:
    """The writes of one database: an event run whole, and the outbox's leases and
    settlements. Each method runs in the transaction under way."""

    db: Any
    cursor: Any  # what the writes execute on: a reused cursor, or the connection itself
    reads: SqlReads
    # appended to the query that picks rows to lease: on PostgreSQL, FOR UPDATE SKIP LOCKED
    LEASE_LOCK = ""

    def _conferences_changed(self) -> None:
        """A write changed a row of conferences: whatever was read of them is out of date."""

    # --- one event, whole --------------------------------------------------------------

    def run(self, entry: Entry, event: Event, rules: Rules, now: float,
            new_id: str = "") -> Decision | None:
        """One event in the transaction under way: claim its identity (None when it was
        seen before: a replay), read what its decision needs, decide, apply the effects.
        An inbound text's claim is the text itself, kept by its message id (longer than
        claims are): a second row keyed on the same id would only cost a write."""
        if isinstance(event, TextReceived):
            if not self.record_inbound(event.message_id, event.sender, event.line, event.text,
                                       now):
                return None
        elif event.key and not self.claim(event.key, now):
            return None
        found: Conference | Sender | None = None
        if entry.reads is Reads.SENDER:
            sender = getattr(event, "sender", "")
            found = Sender(self.reads.current_conference(sender, now - FOLLOW_UP),
                           self.reads.opted_out()) if sender in rules.organizers else NOTHING_READ
        elif entry.reads is Reads.NAMED_CONFERENCE:  # our conference id is its tag and name
            tag = getattr(event, "tag", None)
            found = (self.reads.conference(tag) if tag else None) or self.reads.conference(
                getattr(event, "name", ""))
        elif entry.reads is Reads.CONFERENCE:
            found = self.reads.conference(getattr(event, "conference_id", ""))
        decision = entry.decide(rules, event, found, now, new_id)
        if decision.effects:
            self.apply(decision.effects, now, getattr(event, "application_id", None))
        return decision

    # --- callbacks seen -------------------------------------------------------------

    def claim(self, key: str, now: float) -> bool:
        """Record a callback's identity; False when it was seen before (a replay)."""
        cursor = self.cursor.execute(
            "INSERT INTO processed (key, at) VALUES (?, ?) ON CONFLICT DO NOTHING", (key, now)
        )
        return bool(cursor.rowcount == 1)

    def record_inbound(self, message_id: str, sender: str, line: str, body: str,
                       at: float) -> bool:
        """Keep an inbound text; False when a text with its id is already kept. Texts are
        kept after their callback identities are pruned, so this refuses a replay of a text
        however late Bandwidth delivers it again."""
        cursor = self.cursor.execute(
            "INSERT INTO inbound (message_id, sender, line, body, received_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (message_id, sender, line, body, at))
        return bool(cursor.rowcount == 1)

    def prune_claims(self, before: float) -> int:
        """Forget callback identities older than `before`; returns how many. (A scan, once
        an hour: an index on `at` would cost every webhook a page write.)"""
        return int(self.cursor.execute("DELETE FROM processed WHERE at < ?", (before,)).rowcount)

    # --- applying the state machine's effects ---------------------------------------

    def apply(self, effects: Sequence[Effect], now: float, application_id: str | None) -> None:
        """Write what the state machine decided, in the transaction under way."""
        db = self.cursor
        for effect in effects:
            if isinstance(effect, (StartConference, BeginEnding, RecordBandwidthId,
                                   FinishConference, AddInvitees)):
                self._conferences_changed()
            if isinstance(effect, StartConference):
                c = effect.conference
                db.execute(
                    "INSERT INTO conferences (id, organizer, status, created_at, application_id,"
                    " recorded) VALUES (?, ?, ?, ?, ?, ?)",
                    (c.id, c.organizer, c.status, c.created_at, application_id or "",
                     int(c.recorded)),
                )
                db.executemany(
                    "INSERT INTO invitees (conference_id, position, number) VALUES (?, ?, ?)",
                    [(c.id, i, n) for i, n in enumerate(c.invitees)],
                )
            elif isinstance(effect, QueueText):
                app = (self.reads.application_id(effect.conference_id)
                       if effect.conference_id else None) or application_id
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, purpose, recipients, body,"
                    " application_id, due_at, created_at, media)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (TEXT, effect.conference_id, effect.purpose, json.dumps(list(effect.to)),
                     effect.text, app, now, now,
                     json.dumps(list(effect.media)) if effect.media else None),
                )
            elif isinstance(effect, BeginEnding):
                db.execute(
                    "UPDATE conferences SET status = ?, closing_text = ? WHERE id = ?",
                    (ENDING, effect.closing_text, effect.conference_id),
                )
            elif isinstance(effect, QueueCompletion):
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, due_at, created_at)"
                    " VALUES (?, ?, ?, ?)", (COMPLETE, effect.conference_id, now, now))
            elif isinstance(effect, QueueRecapTimer):
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, due_at, created_at)"
                    " VALUES (?, ?, ?, ?)", (RECAP, effect.conference_id, effect.due, now))
            elif isinstance(effect, RecordBandwidthId):
                db.execute("UPDATE conferences SET bandwidth_id = ? WHERE id = ?",
                           (effect.bandwidth_id, effect.conference_id))
            elif isinstance(effect, RecordJoin):
                # a leave delivered before its join left a row: the join only dates it
                db.execute(
                    "INSERT INTO members (call_id, conference_id, number, joined_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET"
                    f" joined_at = {smaller('members.joined_at', 'excluded.joined_at')}",
                    (effect.call_id, effect.conference_id, effect.number, effect.at),
                )
            elif isinstance(effect, RecordLeave) and effect.conference_id is not None:
                db.execute(
                    "INSERT INTO members (call_id, conference_id, number, joined_at, left_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (call_id) DO UPDATE SET"
                    " left_at = COALESCE(members.left_at,"
                    f" {larger('members.joined_at', 'excluded.left_at')})",
                    (effect.call_id, effect.conference_id, effect.number or "", effect.at,
                     effect.at),
                )
            elif isinstance(effect, RecordLeave):
                db.execute(
                    f"UPDATE members SET left_at = {larger('joined_at', '?')}"
                    " WHERE call_id = ? AND left_at IS NULL",
                    (effect.at, effect.at, effect.call_id),  # the time, twice: see larger
                )
            elif isinstance(effect, FinishConference):
                db.execute("UPDATE conferences SET status = ?, ended_at = ? WHERE id = ?",
                           (ENDED, effect.at, effect.conference_id))
                db.execute(
                    f"UPDATE members SET left_at = {larger('joined_at', '?')}"
                    " WHERE conference_id = ? AND left_at IS NULL",
                    (effect.at, effect.at, effect.conference_id),
                )
            elif isinstance(effect, RecordDelivery):
                self._record_delivery(effect, now)
            elif isinstance(effect, QueueCall):
                db.execute(
                    "INSERT INTO outbox (kind, conference_id, recipients, due_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (CALL, effect.conference_id, json.dumps([effect.number]), now, now))
            elif isinstance(effect, AddInvitees):
                last = db.execute("SELECT COALESCE(MAX(position), -1) FROM invitees"
                                  " WHERE conference_id = ?", (effect.conference_id,)).fetchone()
                db.executemany(
                    "INSERT INTO invitees (conference_id, position, number) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    [(effect.conference_id, int(last[0]) + 1 + i, number)
                     for i, number in enumerate(effect.numbers)])
            elif isinstance(effect, RecordRecording):
                r = effect.recording
                db.execute(
                    "INSERT INTO recordings (recording_id, conference_id, bandwidth_id, status,"
                    " media_url, duration, link, token, expires_at, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (r.recording_id, effect.conference_id, effect.bandwidth_id, r.status,
                     effect.media_url, r.duration, r.link, r.link.rsplit("/", 1)[-1],
                     r.expires_at, effect.at))
            elif isinstance(effect, OptOut):
                db.execute("INSERT INTO opt_outs (number, at) VALUES (?, ?)"
                           " ON CONFLICT (number) DO UPDATE SET at = excluded.at",
                           (effect.number, effect.at))
            elif isinstance(effect, OptIn):
                db.execute("DELETE FROM opt_outs WHERE number = ?", (effect.number,))
            else:  # pragma: no cover
                raise AssertionError(effect)

    def _record_delivery(self, effect: RecordDelivery, now: float) -> None:
        row = None
        if effect.tag and effect.tag.isascii() and effect.tag.isdigit() and len(effect.tag) < 19:
            row = self.cursor.execute("SELECT id FROM outbox WHERE id = ? AND kind = 'text'",
                                  (int(effect.tag),)).fetchone()
        if row is None:
            row = self.cursor.execute("SELECT id FROM outbox WHERE message_id = ?",
                                  (effect.message_id,)).fetchone()
        if row is None:
            return
        state = effect.status.removeprefix("message-")
        self.cursor.execute(
            "INSERT INTO deliveries (outbox_id, recipient, status, detail, at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (outbox_id, recipient) DO UPDATE SET"
            " status = excluded.status, detail = excluded.detail, at = excluded.at"
            " WHERE deliveries.status NOT IN ('delivered', 'failed', 'read')"
            " OR excluded.status IN ('failed', 'read')",
            (row[0], effect.recipient, state, effect.detail, now),
        )

    # --- the outbox -------------------------------------------------------------------

    def lease_rows(self, now: float, limit: int, until: float,
                   skip: Sequence[int] = ()) -> list[OutboxRow]:
        """Take up to `limit` pending rows due by `now` and not leased, oldest first, until
        `until`: nothing is sent that was not leased first. Call inside a transaction. A
        row that completes a conference comes with the conference's Bandwidth id."""
        rows = self.cursor.execute(
            "SELECT outbox.*, conferences.bandwidth_id AS bandwidth_id FROM outbox"
            " LEFT JOIN conferences ON conferences.id = outbox.conference_id"
            " WHERE outbox.status = 'pending' AND due_at <= ?"
            " AND (leased_until IS NULL OR leased_until <= ?)"
            f"{not_in(skip, 'outbox.id')} ORDER BY due_at, outbox.id"
            f" LIMIT ?{self.LEASE_LOCK}",
            (now, now, *skip, limit),
        ).fetchall()
        if rows:
            ids = [row["id"] for row in rows]
            self.cursor.execute(
                # a lease that ran out unsettled: its sender may have sent the row
                "UPDATE outbox SET doubtful = doubtful"
                " + CASE WHEN leased_until IS NULL THEN 0 ELSE 1 END,"
                f" leased_until = ? WHERE id IN ({','.join('?' * len(ids))})", (until, *ids))
        return self._without_opted_out([outbox_row(row) for row in rows])

    def _without_opted_out(self, rows: list[OutboxRow]) -> list[OutboxRow]:
        """`rows` with every number that said STOP since its text was queued taken off it
        (but the answer to a STOP or a START itself)."""
        numbers = sorted({n for row in rows if row.kind == TEXT and row.purpose not in ANSWERS
                          for n in row.recipients})
        if not numbers:
            return rows
        stopped = {r[0] for r in self.cursor.execute(
            f"SELECT number FROM opt_outs WHERE number IN ({','.join('?' * len(numbers))})",
            tuple(numbers)).fetchall()}
        if not stopped:
            return rows
        return [row if row.kind != TEXT or row.purpose in ANSWERS else replace(
            row, recipients=tuple(n for n in row.recipients if n not in stopped),
            opted_out=tuple(n for n in row.recipients if n in stopped)) for row in rows]

    def finish_row(self, row_id: int, status: str, now: float, *, message_id: str | None = None,
                   error: str | None = None, doubtful: bool = False) -> bool:
        """Settle a row for good (sent, done or failed), and end its lease; False when it
        was settled already (by another sender, after its lease ran out)."""
        cursor = self.cursor.execute(
            "UPDATE outbox SET status = ?, finished_at = ?, message_id = COALESCE(?, message_id),"
            " last_error = COALESCE(?, last_error), attempts = attempts + 1,"
            " leased_until = NULL, doubtful = doubtful + ? WHERE id = ? AND status = 'pending'",
            (status, now, message_id, error, int(doubtful), row_id),
        )
        return bool(cursor.rowcount == 1)

    def retry_row(self, row_id: int, due_at: float, error: str, *,
                  doubtful: bool = False) -> None:
        """Settle an attempt that failed: try again at `due_at`; its lease ends."""
        self.cursor.execute(
            "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ?,"
            " leased_until = NULL, doubtful = doubtful + ? WHERE id = ? AND status = 'pending'",
            (due_at, error, int(doubtful), row_id),
        )

    def _settle(self, settled: Sequence[Settlement], rules: Rules, now: float) -> list[str]:
        """The write for `settled`, and each one's event through its registry entry, in the
        transaction under way; the log lines of what the events did."""
        lines = []
        for item in settled:
            row = item.row
            if item.status == RETRY:
                self.retry_row(row.id, item.due_at, item.detail or "", doubtful=item.doubtful)
                continue
            if not self.finish_row(row.id, item.status, now, message_id=item.message_id,
                                   error=item.detail, doubtful=item.doubtful):
                continue  # what it tells the state machine was told once already
            self.cursor.executemany(
                "INSERT INTO deliveries (outbox_id, recipient, status, detail, at)"
                " VALUES (?, ?, 'opted-out', 'said STOP: not sent', ?)"
                " ON CONFLICT (outbox_id, recipient) DO UPDATE SET status = excluded.status,"
                " detail = excluded.detail, at = excluded.at",
                [(row.id, number, now) for number in row.opted_out])
            handling = entry(item.event) if item.event is not None else None
            if item.event is not None and handling is not None:
                decision = self.run(handling, item.event, rules, now)
                line = handling.line(item.event, decision) if decision is not None else None
                if line:
                    lines.append(line)
        return lines
