"""Serve's logging: every line reaches stderr, with one write per turn of the event loop."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path

import aiohttp
import pytest
from conftest import inbound_text, voice_event
from fake_bandwidth import FakeBandwidth
from served import Served

from confcall.auth import basic_auth
from confcall.logs import Floods, Formatter, Lines, LoopFlushedHandler, clean


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


# --- what callers can write into the log -----------------------------------------------------

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


def test_clean_escapes_what_could_forge_a_line_or_move_a_terminal() -> None:
    assert clean("a\nb\r\x1b[2J\u202eevil\x00", mask_numbers=False) == (
        "a\\x0ab\\x0d\\x1b[2J\\u202eevil\\x00")
    assert clean("call +12015550123 from +442079460123") == (
        "call +1201***0123 from +4420***0123")
    assert clean("plain text stays", mask_numbers=True) == "plain text stays"


def test_a_traceback_is_indented_under_its_record() -> None:
    try:
        raise ValueError("bad\n2026-11-30 04:00:00,000 INFO confcall.webhooks: forged")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops", None,
                                   sys.exc_info())
    lines = Formatter().format(record).splitlines()
    assert STAMP.match(lines[0]) and all(line.startswith("  ") for line in lines[1:])
    assert not any(STAMP.match(line) for line in lines[1:])


@pytest.mark.parametrize("as_json", [False, True])
@pytest.mark.parametrize("mask_numbers", [True, False])
@pytest.mark.parametrize("created", [1_780_000_000.0, 1_780_000_000.9995, 1_780_003_599.042])
def test_lines_are_written_as_the_formatter_writes_them(as_json: bool, mask_numbers: bool,
                                                         created: float) -> None:
    formatter = Formatter(mask_numbers=mask_numbers, as_json=as_json)
    lines = Lines(LoopFlushedHandler(RecordingStream()), formatter)  # type: ignore[arg-type]
    message = "text from +12015550123\n2026-11-30 04:00:00,000 INFO x: forged \u202e%s"
    record = logging.LogRecord("confcall.webhooks", logging.INFO, __file__, 1, "%s",
                               (message,), None)
    record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
    expected = formatter.format(record)
    assert lines.format("confcall.webhooks", message, created) == expected
    assert lines.format("confcall.webhooks", message, created) == expected  # the stamp kept
    assert "\n" not in expected and ("+12015550123" in expected) is not mask_numbers


async def test_lines_wait_for_the_turns_flush_and_come_before_later_records() -> None:
    stream = RecordingStream()
    log, handler = logger_to(stream)
    handler.setFormatter(Formatter(mask_numbers=False))
    lines = Lines(handler, Formatter(mask_numbers=False))
    lines.write("confcall.webhooks", "first")
    lines.write("confcall.webhooks", "second")
    log.warning("a record after them")
    lines.write("confcall.webhooks", "third")
    assert stream.flushed == []
    await asyncio.sleep(0)
    [written] = stream.flushed  # one write for the turn
    assert [line.split(": ", 1)[1] for line in written.splitlines()] == [
        "first", "second", "a record after them", "third"]
    assert all(STAMP.match(line) for line in written.splitlines())
    handler.close()


def test_outside_a_loop_lines_are_written_at_once() -> None:
    stream = RecordingStream()
    _, handler = logger_to(stream)
    Lines(handler, Formatter()).write("confcall.serve", "stopping")
    assert [f.split(": ", 1)[1] for f in stream.flushed] == ["stopping\n"]
    handler.close()


def test_floods_of_one_warning_are_held_back_and_counted() -> None:
    floods = Floods(burst=3, interval=60)
    records = [logging.LogRecord("confcall.webhooks", logging.WARNING, __file__, 1,
                                 "%s %s: 400 %s", ("POST", "/x", n), None) for n in range(50)]
    passed = [r for r in records if floods.filter(r)]
    assert len(passed) == 3
    info = logging.LogRecord("confcall.webhooks", logging.INFO, __file__, 1, "fine", None, None)
    assert all(floods.filter(info) for _ in range(50))  # the normal log is never held back
    floods.interval = 0  # the next window
    nxt = records[0]
    assert floods.filter(nxt) and "(and 47 more like it held back)" in nxt.getMessage()


async def test_nothing_a_caller_sends_forges_a_line_or_shows_a_number(
        fake: FakeBandwidth, tmp_path: Path) -> None:
    served = Served(tmp_path, fake, ["+12015550101"],
                    CONFCALL_SERVER_CALLBACK_USERNAME="bw",
                    CONFCALL_SERVER_CALLBACK_PASSWORD="s3cret-Xy")
    await served.start()
    forged = "2026-11-30 04:00:00,000 INFO confcall.webhooks: forged"
    auth = {"Authorization": basic_auth("bw", "s3cret-Xy")}
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/callbacks/messaging%0A" + forged.replace(" ", "%20"),
                         "/callbacks/messaging%0D%0A%1B[2J"):
                async with session.post(served.url + path, json=[]) as answer:
                    assert answer.status == 401  # like any other path under /callbacks/
                    assert answer.content_type == "application/json"
            call = voice_event("initiate", **{"from": "+12015550199", "to": "+12015550100",
                                              "callId": "c-1\n" + forged})
            async with session.post(served.url + "/callbacks/voice/initiate", json=call,
                                    headers=auth) as answer:
                assert answer.status == 200
            text = inbound_text("+12015550198\r\n" + forged, "hi", line="+12015550100")
            async with session.post(served.url + "/callbacks/messaging", json=text,
                                    headers=auth) as answer:  # a line written by logs.Lines
                assert answer.status == 200
            for _ in range(60):  # a flood of bad requests
                async with session.post(served.url + "/callbacks/messaging", data=b"{",
                                        headers={**auth, "Content-Type": "application/json"}
                                        ) as answer:
                    assert answer.status == 400
    finally:
        await served.terminate()
    log = (tmp_path / "serve.log").read_text()
    lines = [line for line in log.splitlines() if STAMP.match(line)]
    assert not [line for line in lines if "forged" in line and line.endswith(": forged")]
    assert "c-1\\x0a2026-11-30" in log
    assert [line for line in lines if "text from +1201***0198\\x0d\\x0a2026" in line]
    assert "\x1b" not in log
    assert not re.search(r"\+1201555\d{4}", "\n".join(lines))  # every number masked
    bad = [line for line in lines if "400 body is not JSON" in line]
    assert 1 <= len(bad) <= 10
