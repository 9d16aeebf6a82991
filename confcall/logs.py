"""Logging for `confcall serve`: one line per event on stderr, written once per loop turn."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
BUFFER = 64 * 1024


class LoopFlushedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, inside a running event loop, flushes once per turn of the
    loop instead of once per record.

    Flushing is a system call; under load a turn of the loop answers dozens of webhooks,
    each logging a line, and one write for all of them costs a fraction of one each.
    Lines reach the stream before the loop does anything else, so at most the lines of
    the turn in progress are lost if the process is killed. Outside a loop (start-up,
    shutdown, another thread) it flushes every record, as StreamHandler does."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._scheduled = False

    def flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            super().flush()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._scheduled = False
        super().flush()

    def close(self) -> None:
        super().flush()
        super().close()


@contextmanager
def to_stderr(level: int = logging.INFO) -> Iterator[None]:
    """Log records at `level` and above to stderr until the block ends."""
    # Nothing logged asks where it was called from, or which thread or process logged it:
    # leave out the work of finding out (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False

    # stderr is line-buffered, which would write every line at once: a buffer of our own
    stream = open(sys.stderr.fileno(), "w", buffering=BUFFER,  # noqa: SIM115
                  encoding=sys.stderr.encoding, errors="backslashreplace", closefd=False)
    handler = LoopFlushedHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
        stream.close()
