"""Logging for `confcall serve`: one line per event on stderr, written once per loop turn;
every line cleaned of what a caller could forge (control characters, line breaks) and of
phone numbers, and floods of the same warning summed up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from confcall.phone import mask

BUFFER = 64 * 1024
_NUMBER = re.compile(r"\+\d{7,15}")  # E.164, as confcall writes every number


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else (
        f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def clean(text: str, mask_numbers: bool = True) -> str:
    """`text` safe for one log line: anything a terminal or a log reader would act on
    (control characters, line breaks, bidi overrides: what `str.isprintable` refuses)
    shown as an escape, and, with `mask_numbers`, every phone number masked. Applied to
    every line, whoever logged it, so no caller can forge a line or leak a number."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else _escaped(c) for c in text)
    if mask_numbers and "+" in text:
        text = _NUMBER.sub(_masked, text)
    return text


def _masked(found: re.Match[str]) -> str:
    number = found.group()
    shown = _MASKS.get(number)
    if shown is None:  # the same numbers come again and again: mask each once
        if len(_MASKS) >= 4096:
            _MASKS.clear()
        shown = _MASKS[number] = mask(number)
    return shown


_MASKS: dict[str, str] = {}
_MILLISECONDS = [f"{n:03d}" for n in range(1000)]  # ",%03d" of logging's stamp, made once


class Formatter(logging.Formatter):
    """One line per record (`time LEVEL logger: message`, or a JSON object), the message
    cleaned; a traceback follows indented, so that none of its lines can pass for a
    record of its own."""

    def __init__(self, *, mask_numbers: bool = True, as_json: bool = False) -> None:
        super().__init__()
        self.mask_numbers = mask_numbers
        self.as_json = as_json

    def format(self, record: logging.LogRecord) -> str:
        message = clean(record.getMessage(), self.mask_numbers)
        trace = ""
        if record.exc_info:
            trace = "\n".join("  " + clean(line, self.mask_numbers)
                              for line in self.formatException(record.exc_info).splitlines())
        if self.as_json:
            moment = datetime.fromtimestamp(record.created, tz=UTC)
            entry: dict[str, Any] = {"time": moment.isoformat(timespec="milliseconds"),
                                     "level": record.levelname, "logger": record.name,
                                     "message": message}
            if trace:
                entry["traceback"] = trace
            return json.dumps(entry)
        line = f"{self.formatTime(record)} {record.levelname} {record.name}: {message}"
        return f"{line}\n{trace}" if trace else line


class Floods(logging.Filter):
    """Lets through at most `burst` warnings (or worse) of one kind (logger and message
    template) per `interval` seconds; the next one let through says how many were held
    back. A flood of bad requests, or of failed accepts when the process is out of file
    descriptors, is then a few lines a minute, not a disk full of log."""

    def __init__(self, burst: int = 10, interval: float = 10.0) -> None:
        super().__init__()
        self.burst = burst
        self.interval = interval
        self._kinds: dict[tuple[str, Any], list[float]] = {}  # [window start, let, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = time.monotonic()
        kind = (record.name, record.msg)
        window = self._kinds.get(kind)
        if window is None or now - window[0] >= self.interval:
            held = int(window[2]) if window else 0
            self._kinds[kind] = [now, 1, 0]
            if len(self._kinds) > 1000:  # forget kinds long quiet
                self._kinds = {k: v for k, v in self._kinds.items()
                               if now - v[0] < self.interval}
            if held:
                record.msg = f"{record.msg} (and {held} more like it held back)"
            return True
        if window[1] < self.burst:
            window[1] += 1
            return True
        window[2] += 1
        return False


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
        self.lines: Lines | None = None  # lines waiting to be written before any record

    def emit(self, record: logging.LogRecord) -> None:
        if self.lines is not None and self.lines.waiting:
            self.lines.write_waiting()  # they came first
        super().emit(record)

    def flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush_now()
            return
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._scheduled = False
        if self.lines is not None and self.lines.waiting:
            with self.lock:  # type: ignore[union-attr]  # set by createLock
                self.lines.write_waiting()
        super().flush()

    def close(self) -> None:
        self._flush_now()
        super().close()


class Lines:
    """INFO lines written to the handler's stream, exactly as its Formatter would write
    them, without a LogRecord, the filters and the handler's machinery around each: for
    the one line each webhook that acts logs (see `info`), that machinery costs about as
    much as the rest of the logging. A line waits for the handler's flush (once per turn
    of the loop), so that a turn's lines are formatted and written at once; a record the
    handler writes meanwhile comes after them. Still cleaned and masked as every line is."""

    def __init__(self, handler: LoopFlushedHandler, formatter: Formatter) -> None:
        self.handler = handler
        self.formatter = formatter
        self.waiting: list[tuple[str, str, float]] = []
        self._second = -1
        self._stamp = ""
        handler.lines = self

    def format(self, name: str, message: str, created: float) -> str:
        """What `formatter` makes of an INFO record of logger `name` made at `created`."""
        message = clean(message, self.formatter.mask_numbers)
        if self.formatter.as_json:
            moment = datetime.fromtimestamp(created, tz=UTC)
            return json.dumps({"time": moment.isoformat(timespec="milliseconds"),
                               "level": "INFO", "logger": name, "message": message})
        second = int(created)
        if second != self._second:  # logging.Formatter.formatTime, once a second
            self._second = second
            self._stamp = time.strftime(self.formatter.default_time_format,
                                        self.formatter.converter(created)) + ","
        milliseconds = _MILLISECONDS[int((created - second) * 1000)]
        return f"{self._stamp}{milliseconds} INFO {name}: {message}"

    def write(self, name: str, message: str) -> None:
        """Log `message` as logger `name` at INFO, now."""
        self.waiting.append((name, message, time.time()))
        if len(self.waiting) == 1:
            self.handler.flush()  # at the end of this turn, or at once outside a loop

    def write_waiting(self) -> None:
        """Write the lines waiting (under the handler's lock)."""
        waiting, self.waiting = self.waiting, []
        end = self.handler.terminator
        # a log that cannot be written must not fail what it tells of (a committed
        # webhook); logging itself would only complain on stderr
        with contextlib.suppress(Exception):
            self.handler.stream.write("".join(
                self.format(name, message, created) + end for name, message, created in waiting))


_lines: Lines | None = None  # while `to_stderr` is in force


def info(logger: logging.Logger, message: str) -> None:
    """`logger.info(message)`, by way of `Lines` while `to_stderr` is in force."""
    if not logger.isEnabledFor(logging.INFO):
        return
    if _lines is None:
        logger.info("%s", message)
    else:
        _lines.write(logger.name, message)


@contextmanager
def to_stderr(level: int = logging.INFO, *, mask_numbers: bool = True,
              as_json: bool = False) -> Iterator[None]:
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
    formatter = Formatter(mask_numbers=mask_numbers, as_json=as_json)
    handler.setFormatter(formatter)
    handler.addFilter(Floods())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    global _lines
    _lines = Lines(handler, formatter)
    try:
        yield
    finally:
        _lines = None
        root.removeHandler(handler)
        handler.close()
        stream.close()
