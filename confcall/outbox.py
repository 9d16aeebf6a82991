"""The outbox worker: sends due rows (texts, conference completions, recap timers) to Bandwidth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from confcall import conference
from confcall.bandwidth import BandwidthClient
from confcall.config import Config
from confcall.errors import BandwidthError, BandwidthUnavailable
from confcall.phone import for_log
from confcall.store import COMPLETE, DONE, FAILED, RECAP, SENT, TEXT, OutboxRow, Store

log = logging.getLogger("confcall.outbox")

FIRST_RETRY = 1.0  # seconds; doubles with each attempt up to config.max_retry_delay
IDLE_POLL = 1.0
PRUNE_EVERY = 3600.0


def backoff(attempts: int, cap: float, retry_after: float | None = None) -> float:
    """Seconds before the next try: Bandwidth's Retry-After when it gave one, else
    exponential with jitter, so that a crowd of rows does not retry in step."""
    if retry_after is not None:
        return min(cap, retry_after)
    ceiling = min(cap, FIRST_RETRY * 2 ** min(attempts, 30))
    return random.uniform(ceiling / 2, ceiling)


class Outbox:
    """Sends what the webhooks committed. A row is marked sent only after Bandwidth accepted
    it, so a crash before that resends it: at least once, never lost."""

    def __init__(self, store: Store, client: BandwidthClient, config: Config,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.client = client
        self.config = config
        self.clock = clock
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(config.outbox_concurrency)
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._last_prune = 0.0

    def wake(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="confcall-outbox")

    async def close(self, grace: float = 2.0) -> None:
        """Stop taking rows; give the sends under way `grace` seconds to finish."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        pending = list(self._in_flight.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # e.g. the database locked for too long: the rows keep
                log.exception("outbox: unexpected error; trying again in %.0f s", IDLE_POLL)
                await asyncio.sleep(IDLE_POLL)

    async def _tick(self) -> None:
        """Start sending what is due, then wait until more is due or new rows arrive."""
        now = self.clock()
        if now - self._last_prune > PRUNE_EVERY:
            self._last_prune = now
            pruned = self.store.prune(now - self.config.retain_days * 86400)
            if pruned:
                log.info("pruned %d processed-callback records", pruned)
        self._wake.clear()
        for row in self.store.due(now, self.config.outbox_concurrency * 2,
                                  list(self._in_flight)):
            await self._slots.acquire()
            task = asyncio.create_task(self._send(row), name=f"confcall-outbox-{row.id}")
            self._in_flight[row.id] = task
        next_due = self.store.next_due(list(self._in_flight))
        wait = IDLE_POLL if next_due is None else min(IDLE_POLL, next_due - self.clock())
        if wait > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _send(self, row: OutboxRow) -> None:
        try:
            await self._attempt(row)
        except (BandwidthError, BandwidthUnavailable) as exc:
            self._failed_attempt(row, exc)
        except Exception as exc:  # a bug must not stop the outbox: keep the row, retry later
            log.exception("outbox row %d: unexpected error", row.id)
            self._retry(row, f"internal error: {type(exc).__name__}", None)
        finally:
            self._in_flight.pop(row.id, None)
            self._slots.release()
            self._wake.set()

    async def _attempt(self, row: OutboxRow) -> None:
        if row.kind == TEXT:
            application_id = (self.config.bandwidth.messaging_application_id
                              or row.application_id or "")
            message_id = await self.client.send_message(
                application_id=application_id, to=list(row.recipients), text=row.body or "",
                tag=str(row.id),
            )
            with self.store.transaction():
                self.store.finish_row(row.id, SENT, self.clock(), message_id=message_id)
            log.info("text %d (%s) sent to %s", row.id, row.purpose,
                     ", ".join(for_log(n, self.config.mask_numbers) for n in row.recipients))
        elif row.kind == COMPLETE:
            note = await self._complete(row.conference_id or "")
            now = self.clock()
            with self.store.transaction():
                # nothing completed, so no conferenceCompleted will come: close it now, as
                # when the wait for one runs out, rather than a minute from now
                closed = note is not None and self._close_if_ending(row, now)
                self.store.finish_row(row.id, DONE, now, error=note)
            log.info("conference %s: %s", row.conference_id, note or "completed on Bandwidth")
            if closed:
                log.info("%s ended", row.conference_id)
        elif row.kind == RECAP:
            now = self.clock()
            with self.store.transaction():
                closed = self._close_if_ending(row, now)
                self.store.finish_row(row.id, DONE, now)
            if closed:
                log.info("%s ended: Bandwidth said nothing of its end in time",
                         row.conference_id)

    def _close_if_ending(self, row: OutboxRow, now: float) -> bool:
        """Close the row's conference, recap and all, if it is still ending; whether it was.
        For when Bandwidth will not say, or did not say in time, that it completed. Call
        inside a transaction."""
        effects = conference.on_recap_due(self.store.conference(row.conference_id or ""), now)
        self.store.apply(effects, now, None)
        return bool(effects)

    async def _complete(self, conference_id: str) -> str | None:
        """Complete the conference on Bandwidth; a note when there was nothing to complete."""
        found = self.store.conference(conference_id)
        if found is None:
            return "no such conference"
        targets = [found.bandwidth_id] if found.bandwidth_id else [
            c.id for c in await self.client.find_conferences(conference_id)
            if c.name == conference_id and not c.completed
        ]
        if not targets:
            return "not running on Bandwidth: nothing to complete"
        for bandwidth_id in targets:
            try:
                await self.client.complete_conference(bandwidth_id)
            except BandwidthError as exc:
                if exc.status != 404:
                    raise
                return "already gone on Bandwidth"
        return None

    def _failed_attempt(self, row: OutboxRow, exc: BandwidthError | BandwidthUnavailable) -> None:
        if isinstance(exc, BandwidthError) and not exc.retryable:
            self._give_up(row, exc)
            return
        retry_after = exc.retry_after if isinstance(exc, BandwidthError) else None
        self._retry(row, str(exc), retry_after)

    def _retry(self, row: OutboxRow, error: str, retry_after: float | None) -> None:
        delay = backoff(row.attempts, self.config.max_retry_delay, retry_after)
        with self.store.transaction():
            self.store.retry_row(row.id, self.clock() + delay, error[:1000])
        log.warning("outbox row %d (%s): %s; retrying in %.1fs", row.id, row.kind,
                    error[:200], delay)

    def _give_up(self, row: OutboxRow, exc: BandwidthError) -> None:
        now = self.clock()
        with self.store.transaction():
            self.store.finish_row(row.id, FAILED, now, error=f"{exc.status}: {exc.body[:1000]}")
            if row.purpose == "invite" and row.conference_id:
                found = self.store.conference(row.conference_id)
                if found is not None:
                    effects = conference.on_invite_failed(found, row.recipients, exc.status)
                    self.store.apply(effects, now, None)
        log.error("outbox row %d (%s) failed for good: Bandwidth answered %d", row.id, row.kind,
                  exc.status)
