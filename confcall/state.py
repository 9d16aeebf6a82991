"""A conference as it is stored and reported: its members, its recordings and what is
read from them. conference.py decides how it changes; this module holds only what `status`
and `history` need, so that they start fast."""

from __future__ import annotations

import math
from dataclasses import dataclass

ACTIVE, ENDING, ENDED = "active", "ending", "ended"


@dataclass(frozen=True)
class Member:
    """One call's time in a conference."""

    call_id: str
    number: str
    joined_at: float
    left_at: float | None = None


@dataclass(frozen=True)
class Recording:
    """A recording of a conference, as Bandwidth made it available; `link` is where the
    organizer downloads it (an unguessable capability, working until `expires_at`)."""

    recording_id: str
    status: str  # Bandwidth's: complete, partial, error…
    link: str
    expires_at: float
    duration: str = ""

    @property
    def usable(self) -> bool:
        return self.status in ("complete", "partial")


@dataclass(frozen=True)
class Conference:
    """A conference. Its id is also its name on Bandwidth and the tag in its BXML."""

    id: str
    organizer: str
    status: str
    invitees: tuple[str, ...]
    created_at: float
    ended_at: float | None = None
    bandwidth_id: str | None = None
    closing_text: str | None = None
    members: tuple[Member, ...] = ()
    recorded: bool = False  # started while recording.enabled: its callers hear so
    recordings: tuple[Recording, ...] = ()

    def may_join(self, number: str) -> bool:
        return self.status == ACTIVE and (number in self.invitees or number == self.organizer)


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def time_on_call(conference: Conference) -> dict[str, float]:
    """Seconds each number spent on the call, over all of its calls."""
    totals: dict[str, float] = {}
    end_time = conference.ended_at
    for member in conference.members:
        left = member.left_at if member.left_at is not None else end_time
        if left is None:
            continue
        totals[member.number] = totals.get(member.number, 0.0) + max(0.0, left - member.joined_at)
    return totals
