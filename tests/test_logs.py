"""Serve's logging: every line reaches stderr, with one write per turn of the event loop."""

from __future__ import annotations

import asyncio
import logging

from confcall.logs import LoopFlushedHandler


class RecordingStream:
    """A stream that keeps what was written and counts flushes: a fake stderr."""

    def __init__(self) -> None:
        self.buffered = ""
        self.flushed: list[str] = []

    def write(self, text: str) -> int:
        self.buffered += text
        return len(text)

    def flush(self) -> None:
        if self.buffered:
            self.flushed.append(self.buffered)
            self.buffered = ""


def logger_to(stream: RecordingStream) -> tuple[logging.Logger, LoopFlushedHandler]:
    handler = LoopFlushedHandler(stream)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger(f"confcall.test.{id(stream)}")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return log, handler


async def test_a_turn_of_the_loop_is_written_at_once_and_before_the_next() -> None:
    stream = RecordingStream()
    log, _ = logger_to(stream)
    for n in range(5):
        log.info("line %d", n)
    assert stream.flushed == []  # nothing written while the turn is in progress
    await asyncio.sleep(0)
    assert stream.flushed == ["".join(f"line {n}\n" for n in range(5))]
    log.info("next")
    await asyncio.sleep(0)
    assert stream.flushed[1:] == ["next\n"]


def test_outside_a_loop_every_record_is_written_at_once() -> None:
    stream = RecordingStream()
    log, handler = logger_to(stream)
    log.info("starting")
    assert stream.flushed == ["starting\n"]
    handler.close()


async def test_closing_writes_what_is_pending() -> None:
    stream = RecordingStream()
    log, handler = logger_to(stream)
    log.info("last words")
    handler.close()
    assert stream.flushed == ["last words\n"]
