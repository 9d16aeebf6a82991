"""The SQL reads both stores run, in the dialect SQLite and PostgreSQL share (`SqlReads`),
and the helpers the writes in sql.py share with them. Kept apart from the writes so that
the CLI's reports (`status`, `history`) load no more than reading needs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from confcall.state import Conference, Member, Recording
from confcall.store.model import (
    COMPLETE,
    FAILED,
    PENDING,
    SENT,
    TEXT,
    Delivery,
    OutboxRow,
    StoredRecording,
)


def smaller(a: str, b: str) -> str:
    """The smaller of two SQL values, as both dialects write it (SQLite's MIN(a, b) is
    PostgreSQL's LEAST(a, b))."""
    return f"CASE WHEN {b} < {a} THEN {b} ELSE {a} END"


def larger(a: str, b: str) -> str:
    """The larger of two SQL values; `a` when `b` is NULL."""
    return f"CASE WHEN {b} > {a} THEN {b} ELSE {a} END"


def outbox_row(row: Any) -> OutboxRow:
    return OutboxRow(
        id=row["id"],
        kind=row["kind"],
        conference_id=row["conference_id"],
        purpose=row["purpose"],
        recipients=tuple(json.loads(row["recipients"])) if row["recipients"] else (),
        body=row["body"],
        application_id=row["application_id"],
        status=row["status"],
        attempts=row["attempts"],
        due_at=row["due_at"],
        created_at=row["created_at"],
        last_error=row["last_error"],
        message_id=row["message_id"],
        leased_until=row["leased_until"],
        doubtful=row["doubtful"],
        media=tuple(json.loads(row["media"])) if row["media"] else (),
        bandwidth_id=row["bandwidth_id"] if "bandwidth_id" in row.keys() else None,  # noqa: SIM118
    )


def _stored(row: Any) -> StoredRecording:
    return StoredRecording(
        conference_id=row["conference_id"], media_url=row["media_url"],
        created_at=row["created_at"], recording=Recording(
            row["recording_id"], row["status"], row["link"], row["expires_at"],
            row["duration"]))


def not_in(ids: Sequence[int], column: str = "id") -> str:
    return f" AND {column} NOT IN ({','.join('?' * len(ids))})" if ids else ""


class SqlReads:
    """The read queries of one database, on a connection of their own (the CLI's reports)
    or on a store's, inside its transactions. `db` is sqlite3's connection, or the
    PostgreSQL store's (which takes the same `?` statements)."""

    # appended to the query that reads conferences: PostgreSQL's writes lock what they read
    lock = ""

    def __init__(self, db: Any, where: str) -> None:
        self.db = db
        self._where = where

    @property
    def where(self) -> str:
        """The database, as a person would name it in a message."""
        return self._where

    def _conferences(self, where: str, params: Sequence[Any], *,
                     with_members: bool = True) -> list[Conference]:
        rows = self.db.execute(f"SELECT * FROM conferences WHERE {where}{self.lock}",
                               params).fetchall()
        result = []
        for row in rows:
            invitees = tuple(r[0] for r in self.db.execute(
                "SELECT number FROM invitees WHERE conference_id = ? ORDER BY position",
                (row["id"],)))
            members = tuple(
                Member(r["call_id"], r["number"], r["joined_at"], r["left_at"])
                for r in self.db.execute(
                    "SELECT * FROM members WHERE conference_id = ? ORDER BY joined_at, call_id",
                    (row["id"],))
            ) if with_members else ()
            recordings = tuple(
                _stored(r).recording for r in self.db.execute(
                    "SELECT * FROM recordings WHERE conference_id = ? ORDER BY created_at",
                    (row["id"],))
            ) if with_members else ()
            result.append(Conference(
                id=row["id"], organizer=row["organizer"], status=row["status"],
                invitees=invitees, created_at=row["created_at"], ended_at=row["ended_at"],
                bandwidth_id=row["bandwidth_id"], closing_text=row["closing_text"],
                members=members, recorded=bool(row["recorded"]), recordings=recordings,
            ))
        return result

    def opted_out(self) -> frozenset[str]:
        """The numbers that said STOP."""
        return frozenset(row[0] for row in self.db.execute("SELECT number FROM opt_outs"))

    def recording(self, token: str) -> StoredRecording | None:
        """The recording a link's token names, with where Bandwidth keeps its media."""
        row = self.db.execute("SELECT * FROM recordings WHERE token = ?", (token,)).fetchone()
        return _stored(row) if row else None

    def recordings(self, limit: int) -> list[StoredRecording]:
        """The newest recordings first."""
        return [_stored(row) for row in self.db.execute(
            "SELECT * FROM recordings ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()]

    def conference(self, conference_id: str) -> Conference | None:
        found = self._conferences("id = ?", (conference_id,))
        return found[0] if found else None

    def application_id(self, conference_id: str) -> str | None:
        row = self.db.execute("SELECT application_id FROM conferences WHERE id = ?",
                              (conference_id,)).fetchone()
        return row[0] if row else None

    def active_conference(self, organizer: str) -> Conference | None:
        found = self._conferences("organizer = ? AND status = 'active'", (organizer,))
        return found[0] if found else None

    def current_conference(self, organizer: str, ended_since: float) -> Conference | None:
        """The organizer's conference that has not ended: active, else ending; else the
        last one that ended at `ended_since` or later."""
        found = self._conferences(
            "organizer = ? AND (status IN ('active', 'ending')"
            " OR (status = 'ended' AND ended_at >= ?))"
            " ORDER BY status = 'active' DESC, status = 'ending' DESC, ended_at DESC,"
            " created_at DESC LIMIT 1",
            (organizer, ended_since))
        return found[0] if found else None

    def active_conferences(self) -> list[Conference]:
        return self._conferences("status != 'ended' ORDER BY created_at DESC", ())

    def ended_conferences(self, limit: int) -> list[Conference]:
        return self._conferences("status = 'ended' ORDER BY ended_at DESC LIMIT ?", (limit,))

    def due(self, now: float, limit: int) -> list[OutboxRow]:
        """Pending rows due by `now`, oldest first, whether leased or not."""
        rows = self.db.execute(
            "SELECT * FROM outbox WHERE status = 'pending' AND due_at <= ?"
            " ORDER BY due_at, id LIMIT ?", (now, limit)).fetchall()
        return [outbox_row(row) for row in rows]

    def next_due(self, now: float, skip: Sequence[int] = ()) -> float | None:
        """When the next pending row (other than `skip`) can be leased."""
        row = self.db.execute(
            f"SELECT MIN({larger('due_at', 'leased_until')}) FROM outbox"
            f" WHERE status = 'pending'{not_in(skip)}", skip
        ).fetchone()
        return row[0] if row and row[0] is not None else None

    def outbox(self, conference_id: str | None = None) -> list[OutboxRow]:
        if conference_id is None:
            rows = self.db.execute("SELECT * FROM outbox ORDER BY id").fetchall()
        else:
            rows = self.db.execute("SELECT * FROM outbox WHERE conference_id = ? ORDER BY id",
                                   (conference_id,)).fetchall()
        return [outbox_row(row) for row in rows]

    def backlog(self) -> int:
        return int(self.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND kind != 'recap'"
        ).fetchone()[0])

    def deliveries(self, conference_id: str) -> list[Delivery]:
        """Each recipient of each text of a conference, with what became of it."""
        result = []
        for row in self.outbox(conference_id):
            if row.kind != TEXT:
                continue
            seen = {
                r["recipient"]: (r["status"], r["detail"])
                for r in self.db.execute(
                    "SELECT recipient, status, detail FROM deliveries WHERE outbox_id = ?",
                    (row.id,))
            }
            for recipient in row.recipients:
                base = {PENDING: "queued", SENT: "sent", FAILED: "failed"}.get(row.status, "sent")
                state, detail = seen.get(recipient, (base, row.last_error or ""))
                result.append(Delivery(row.id, row.purpose or "", recipient, state, detail,
                                       row.attempts, row.doubtful > 0))
        return result

    def completion(self, conference_id: str) -> OutboxRow | None:
        """The newest row that completes the conference on Bandwidth, if any."""
        rows = [row for row in self.outbox(conference_id) if row.kind == COMPLETE]
        return rows[-1] if rows else None

    def counts(self) -> dict[str, int]:
        """Rows per table: a health and growth figure."""
        tables = ("conferences", "members", "outbox", "deliveries", "inbound", "processed",
                  "opt_outs", "recordings")
        return {t: int(self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                for t in tables}
