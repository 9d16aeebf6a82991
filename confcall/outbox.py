"""The outbox worker: leases due rows (texts, conference completions, recap timers), sends
them to Bandwidth, and settles each with what Bandwidth answered."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable

from confcall.bandwidth import BandwidthClient
from confcall.conference import Rules
from confcall.config import Config
from confcall.errors import BandwidthError, BandwidthUnavailable, StoreUnavailable
from confcall.events import CallRefused, CompletionRefused, Event, InviteRefused, RecapDue
from confcall.store import (
    CALL,
    COMPLETE,
    DONE,
    FAILED,
    RETRY,
    SENT,
    TEXT,
    OutboxRow,
    Settlement,
    Store,
)

# How long, at shutdown, the outbox waits to record what Bandwidth answered: past it, the
# rows are logged as possible duplicates (the database may be locked, full or gone)
RECORD_AT_EXIT = 2.0

log = logging.getLogger("confcall.outbox")

FIRST_RETRY = 1.0  # seconds; doubles with each attempt up to config.max_retry_delay
IDLE_POLL = 1.0
PRUNE_EVERY = 3600.0
REPLAY_DAYS = 2  # Bandwidth redelivers a messaging callback for 24 h: keep identities longer
CALLS_PER_SECOND = 1.0  # RING places calls no faster: Bandwidth's default rate
STORAGE_RETRY = (0.5, 30.0)  # first and longest pause while the database cannot be written


def backoff(attempts: int, cap: float, retry_after: float | None = None,
            rng: random.Random | None = None) -> float:
    """Seconds before the next try: Bandwidth's Retry-After when it gave one, else
    exponential with jitter, so that a crowd of rows does not retry in step."""
    if retry_after is not None:
        return min(cap, retry_after)
    ceiling = min(cap, FIRST_RETRY * 2 ** min(attempts, 30))
    return (rng or random).uniform(ceiling / 2, ceiling)


class Outbox:
    """Sends what the webhooks committed. Nothing is sent that was not leased by a write
    that succeeded, and a row is marked sent only after Bandwidth accepted it: at least
    once, never lost, and never sent again because the database was failing."""

    def __init__(self, store: Store, client: BandwidthClient, config: Config, rules: Rules,
                 clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.rules = rules
        self.client = client
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        self.lease_seconds = config.lease_seconds
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._settled: dict[int, Settlement] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._storage_pause = 0.0
        self._problem: str | None = None  # why the outbox is not moving, logged once
        self._stalled_since: float | None = None
        self._closing: asyncio.Task[None] | None = None
        self._next_call = 0.0  # loop time the next call may be placed

    def wake(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="confcall-outbox")

    def problem(self) -> str | None:
        """Why the outbox is not moving, for /healthz: it stopped, or it has been unable to
        write the database for longer than its longest pause."""
        if self._loop_task is None or self._loop_task.done():
            return "the outbox is not running"
        if (self._stalled_since is not None
                and time.monotonic() - self._stalled_since > STORAGE_RETRY[1]):
            return f"the outbox has been stalled for {time.monotonic() - self._stalled_since:.0f} s"
        return None

    async def stop(self) -> None:
        """Stop taking rows (the sends under way go on)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)

    def begin_closing(self, grace: float = 2.0) -> None:
        """Start `close` without waiting for it."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._close(grace), name="confcall-outbox-close")

    async def close(self, grace: float = 2.0) -> None:
        """Stop taking rows; give the sends under way `grace` seconds to finish, then write
        what became of them. What cannot be written is logged row by row: Bandwidth may
        have it, and the next start sends it again."""
        self.begin_closing(grace)
        assert self._closing is not None
        await self._closing

    async def _close(self, grace: float) -> None:
        await self.stop()
        pending = list(self._in_flight.items())
        if pending:
            _, late = await asyncio.wait([task for _, task in pending], timeout=grace)
            for row_id, task in pending:
                if task in late:
                    task.cancel()
                    log.warning("outbox row %d was being sent when confcall stopped: if "
                                "Bandwidth took it, the next start sends it again", row_id)
            await asyncio.gather(*late, return_exceptions=True)
        if not self._settled:
            return
        settled = list(self._settled.values())
        try:
            async with asyncio.timeout(RECORD_AT_EXIT):
                await self._write(settled)
        except (TimeoutError, StoreUnavailable) as exc:
            for item in settled:
                if item.accepted or item.doubtful:
                    log.error("outbox row %d: Bandwidth took it, but the database could not "
                              "record that (%s): the next start sends it again",
                              item.row.id, exc or "timed out")

    async def _run(self) -> None:
        while True:
            try:
                await self._tick()
            except StoreUnavailable as exc:  # pause; the rows wait in the database
                self._stalled(str(exc))
                await self._sleep(self._storage_pause)
            except Exception as exc:  # a bug must not stop the outbox: the rows keep
                self._stalled(f"unexpected error: {exc!r}", exc)
                await self._sleep(IDLE_POLL)
            else:
                self._moving()

    def _stalled(self, reason: str, exc: BaseException | None = None) -> None:
        self._storage_pause = min(STORAGE_RETRY[1],
                                  max(STORAGE_RETRY[0], self._storage_pause * 2))
        if self._stalled_since is None:
            self._stalled_since = time.monotonic()
        if reason != self._problem:  # once per state, not once per attempt
            log.warning("outbox paused: %s; trying again with backoff", reason, exc_info=exc)
            self._problem = reason

    def _moving(self) -> None:
        if self._problem is not None:
            log.info("outbox moving again")
        self._problem = None
        self._stalled_since = None
        self._storage_pause = 0.0

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        await self._woken(seconds)

    async def _woken(self, seconds: float) -> None:
        """Wait until woken or `seconds` passed. (Not asyncio.wait_for: before Python 3.12
        it may swallow a cancellation that meets the wake-up, and the outbox never stops.)"""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _tick(self) -> None:
        """Write what the finished sends found, lease what is due and start sending it, then
        wait until more is due or something arrives."""
        now = self.clock()
        if now - self._last_prune > PRUNE_EVERY:
            days = max(self.config.retain_days, REPLAY_DAYS)
            pruned = await self.store.prune(now - days * 86400)
            self._last_prune = now
            if pruned:
                log.info("pruned %d processed-callback records", pruned)
        self._wake.clear()
        if self._settled:
            settled = list(self._settled.values())
            await self._write(settled)
        busy = [*self._in_flight, *self._settled]
        free = self.config.outbox_concurrency - len(self._in_flight)
        if free > 0:
            until = now + self.lease_seconds
            for row in await self.store.lease(now, free, until, busy):
                self._in_flight[row.id] = asyncio.create_task(
                    self._send(row), name=f"confcall-outbox-{row.id}")
        wait = IDLE_POLL  # every slot busy: a send that finishes wakes the loop
        if len(self._in_flight) < self.config.outbox_concurrency:
            next_due = await self.store.next_due(now, [*self._in_flight, *self._settled])
            if next_due is not None:
                wait = min(IDLE_POLL, next_due - self.clock())
        if wait <= 0 or self._wake.is_set():
            await asyncio.sleep(0)  # let the sends and webhooks run between ticks
        else:
            await self._woken(wait)

    async def _send(self, row: OutboxRow) -> None:
        try:
            settled = await self._attempt(row)
        except (BandwidthError, BandwidthUnavailable) as exc:
            settled = self._after_failure(row, exc)
        except Exception as exc:  # a bug must not lose the row: try it again later
            log.exception("outbox row %d: unexpected error", row.id)
            settled = Settlement(row, RETRY, f"internal error: {type(exc).__name__}",
                                 due_at=self.clock() + self._delay(row, None), doubtful=True)
        finally:
            self._in_flight.pop(row.id, None)
        self._settled[row.id] = settled
        self._wake.set()

    async def _attempt(self, row: OutboxRow) -> Settlement:
        if row.kind == TEXT and not row.recipients:
            return Settlement(row, DONE, "not sent: every recipient said STOP")
        if row.kind == TEXT:
            application_id = (self.config.bandwidth.messaging_application_id
                              or row.application_id or "")
            message_id = await self.client.send_message(
                application_id=application_id, to=list(row.recipients), text=row.body or "",
                tag=str(row.id), media=list(row.media),
            )
            return Settlement(row, SENT, message_id=message_id)
        if row.kind == CALL:
            return await self._call(row)
        if row.kind == COMPLETE:
            note = await self._complete(row)
            # nothing completed, so no conferenceCompleted will come: close it now, as
            # when the wait for one runs out, rather than a minute from now
            return Settlement(row, DONE, note, event=self._recap_due(row) if note else None)
        return Settlement(row, DONE, event=self._recap_due(  # RECAP: the wait ran out
            row, "Bandwidth said nothing of its end in time"))

    async def _call(self, row: OutboxRow) -> Settlement:
        """RING one number: place the call (at most CALLS_PER_SECOND, Bandwidth's default
        rate), answered by /callbacks/voice/answer."""
        application_id = self.config.bandwidth.voice_application_id
        if not application_id:
            detail = ("bandwidth.voice_application_id is not set: confcall cannot place "
                      "calls without it")
            return Settlement(row, FAILED, detail, event=CallRefused(
                key="", time=self.clock(), conference_id=row.conference_id or "",
                number=row.recipients[0], detail=detail))
        loop = asyncio.get_running_loop()
        start_at, self._next_call = self._next_call, max(loop.time(), self._next_call) + (
            1 / CALLS_PER_SECOND)
        if start_at > loop.time():
            await asyncio.sleep(start_at - loop.time())
        call_id = await self.client.create_call(
            to=row.recipients[0], application_id=application_id,
            answer_url=self.config.callback_url("/callbacks/voice/answer"),
            disconnect_url=self.config.callback_url("/callbacks/voice/status"),
            tag=row.conference_id or "", credentials=self.config.server.callback_auth)
        return Settlement(row, SENT, message_id=call_id)

    def _recap_due(self, row: OutboxRow, why: str = "") -> RecapDue | None:
        if row.conference_id is None:
            return None
        return RecapDue(key="", time=self.clock(), conference_id=row.conference_id, why=why)

    async def _complete(self, row: OutboxRow) -> str | None:
        """Complete the conference on Bandwidth; a note when there was nothing to complete."""
        conference_id = row.conference_id or ""
        targets = [row.bandwidth_id] if row.bandwidth_id else [
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

    def _delay(self, row: OutboxRow, retry_after: float | None) -> float:
        return backoff(row.attempts, self.config.max_retry_delay, retry_after, self.rng)

    def _after_failure(self, row: OutboxRow,
                       exc: BandwidthError | BandwidthUnavailable) -> Settlement:
        if isinstance(exc, BandwidthError) and not exc.retryable:
            return Settlement(row, FAILED, f"{exc.status}: {exc.body[:1000]}",
                              event=self._refused(row, exc))
        retry_after = exc.retry_after if isinstance(exc, BandwidthError) else None
        delay = self._delay(row, retry_after)
        error = str(exc)[:1000]
        # one line when a row starts failing or fails differently, not one per attempt
        level = logging.WARNING if error != row.last_error else logging.DEBUG
        log.log(level, "outbox row %d (%s): %s; retrying in %.1fs", row.id, row.kind,
                error[:200], delay)
        return Settlement(row, RETRY, error, due_at=self.clock() + delay,
                          doubtful=row.kind == TEXT and exc.maybe_accepted)

    def _refused(self, row: OutboxRow, exc: BandwidthError) -> Event | None:
        """What a refusal for good tells the state machine: an invitation or the end of a
        call that will not happen, which the organizer must hear of."""
        if row.conference_id is None:
            return None
        if row.purpose == "invite":
            return InviteRefused(key="", time=self.clock(), conference_id=row.conference_id,
                                 numbers=row.recipients, status=exc.status)
        if row.kind == CALL:
            return CallRefused(key="", time=self.clock(), conference_id=row.conference_id,
                               number=row.recipients[0],
                               detail=f"Bandwidth answered {exc.status}: {exc.body[:500]}")
        if row.kind == COMPLETE:
            return CompletionRefused(key="", time=self.clock(),
                                     conference_id=row.conference_id,
                                     detail=f"{exc.status}: {exc.body[:1000]}")
        return None

    async def _write(self, settled: list[Settlement]) -> None:
        """Record what became of `settled` in one transaction, then forget them; on failure
        they stay in memory and are written later."""
        lines = await self.store.settle(settled, self.rules, self.clock())
        for item in settled:
            self._settled.pop(item.row.id, None)
        self._log(settled, lines)

    def _log(self, settled: list[Settlement], lines: list[str]) -> None:
        for item in settled:
            row = item.row
            if item.status == SENT:
                log.info("text %d (%s) sent to %s", row.id, row.purpose, ", ".join(row.recipients))
            elif item.status == FAILED:
                log.error("outbox row %d (%s) failed for good: %s", row.id, row.kind,
                          (item.detail or "")[:200])
            elif item.status == DONE and row.kind == COMPLETE:
                log.info("conference %s: %s", row.conference_id,
                         item.detail or "completed on Bandwidth")
        for line in lines:
            log.info("%s", line)
