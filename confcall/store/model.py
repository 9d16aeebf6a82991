"""What the stores keep and hand back, whichever database holds it: outbox rows, what
became of each text, and what an attempt to send one found (a Settlement). Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from confcall.state import Recording

if TYPE_CHECKING:  # an annotation only: `status` and `history` read rows, and start fast
    from confcall.events import Event

TEXT, COMPLETE, RECAP, CALL = "text", "complete", "recap", "call"
PENDING, SENT, FAILED, DONE = "pending", "sent", "failed", "done"
RETRY = "retry"
# Texts that answer a STOP, a START or a HELP: they go even to a number that said STOP.
ANSWERS = frozenset({"optout", "optin", "help"})


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    conference_id: str | None
    purpose: str | None
    recipients: tuple[str, ...]
    body: str | None
    application_id: str | None
    status: str
    attempts: int
    due_at: float
    created_at: float
    last_error: str | None
    message_id: str | None
    leased_until: float | None = None
    doubtful: int = 0
    media: tuple[str, ...] = ()
    bandwidth_id: str | None = None  # a completion's conference on Bandwidth, when known
    opted_out: tuple[str, ...] = ()  # taken off `recipients` when leased: they said STOP


@dataclass(frozen=True)
class Delivery:
    """What became of one text to one recipient: queued, sent, delivered, failed…"""

    outbox_id: int
    purpose: str
    recipient: str
    state: str
    detail: str
    attempts: int = 0
    possible_duplicate: bool = False  # an attempt may have reached Bandwidth unrecorded


@dataclass(frozen=True)
class Settlement:
    """What became of one attempt at an outbox row, to be written: SENT, DONE, FAILED, or
    RETRY at `due_at`; and what it tells the state machine (`event`, run through the
    registry in the same transaction). Kept in memory until written, so a send Bandwidth
    accepted is never sent again because the database could not record it."""

    row: OutboxRow
    status: str
    detail: str | None = None  # Bandwidth's answer for a failure; a note for a done row
    message_id: str | None = None
    due_at: float = 0.0
    doubtful: bool = False  # Bandwidth may have acted on an attempt we could not read
    event: Event | None = None

    @property
    def accepted(self) -> bool:
        return self.status == SENT


@dataclass(frozen=True)
class StoredRecording:
    """A recording as the store keeps it: with its conference, and where Bandwidth keeps
    its media (fetched with the API credentials: never shown)."""

    conference_id: str
    media_url: str
    created_at: float
    recording: Recording
