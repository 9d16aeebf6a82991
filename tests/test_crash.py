"""`confcall serve` as a real process: SIGKILLed mid-flow, on a full disk, with its database
locked by another process, or with Bandwidth slow, hanging or redirecting, it loses nothing
and duplicates only what it marked doubtful; SIGTERMed it finishes what is under way and
exits 0."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import chaos
import pytest
from conftest import ORGANIZER, check_invariants, inbound_text, invitees, wait_for
from fake_bandwidth import FakeBandwidth
from served import Served

from confcall.store.postgres_reads import PostgresReads


def assert_nothing_lost(report: chaos.Report, kills: int, flows: int) -> None:
    """Every kill made and flow run, every text of every flow arrived, none stuck, and
    each duplicate is of a row marked doubtful (the documented window), none of a replayed
    callback."""
    assert report.kills == kills
    assert report.flows >= flows
    assert report.expected == report.flows * 13
    assert report.lost == 0, report.missing
    assert report.stuck == []
    assert report.unexplained == 0, report.unexplained_rows
    assert report.replay_duplicates == 0


async def test_sigkill_at_random_moments_loses_nothing(fake: FakeBandwidth,
                                                       tmp_path: Path) -> None:
    report = await chaos.run(fake, tmp_path, kills=20, flows=3, seed=7)
    print(report.line())
    assert_nothing_lost(report, kills=20, flows=3)


async def test_every_fault_mode_at_random_moments_loses_nothing(fake: FakeBandwidth,
                                                               tmp_path: Path) -> None:
    """SIGKILLs, a full disk, a held lock, a slow, hanging and redirecting Bandwidth, at
    random moments and overlapping: every text arrives, and every duplicate is of a row
    marked doubtful (the documented window), none of a replayed callback. Bounded: eight
    kills, eight seconds of faults (every mode at least once), each a second or two, then
    at most a minute each for the flows and the outbox to finish (about 10 s in all)."""
    report = await chaos.run(fake, tmp_path, kills=8, flows=3, seed=4, faults=chaos.FAULTS,
                             seconds=8, fault_gap=(0.2, 1.0), hold=(0.3, 1.5), settle=60)
    print(report.line(), report.fault_line(), sep="\n")
    assert_nothing_lost(report, kills=8, flows=3)
    applied = set(chaos.FAULTS) - set(report.skipped)
    assert {mode for mode in applied if report.faults[mode] > 0} == applied, report.faults
    assert sum(report.met.values()) > 0  # Bandwidth's faults met requests (not all, always)
    if report.skipped:  # the rest was run and checked; say what was not
        pytest.skip("; ".join(f"{mode} not applied: {why}"
                              for mode, why in report.skipped.items()))


def test_duplicates_are_told_apart_by_tag_and_doubtful_count() -> None:
    """The tally behind the crash tests: a row sent more often than it was marked doubtful
    is unexplained; copies with different tags are a replayed callback."""
    flow = chaos.Flow(0, chaos.ORGANIZERS[0], chaos.invitees_of(0))
    texts = [{"to": list(to), "text": f"{opening} {within}", "tag": str(row)}
             for row, (to, opening, within) in enumerate(flow.expected(), start=1)]
    doubtful = {str(row): 0 for row in range(1, len(texts) + 1)}
    lost = texts.pop(3)
    texts += [texts[0], texts[1], texts[1], {**texts[2], "tag": "99"}]
    doubtful.update({"1": 1, "2": 1})
    report = chaos.Report()
    chaos.tally([flow], texts, doubtful, report)
    assert report.expected == 13 and report.delivered == 12
    assert report.lost == 1 and lost["to"][0] in report.missing[0]
    assert (report.duplicates, report.doubtful, report.unexplained) == (3, 2, 1)
    assert report.unexplained_rows[0].startswith("outbox row 2 ")
    assert report.replay_duplicates == 1
    assert not report.ok


async def post(served: Served, body: object) -> int:
    async with aiohttp.ClientSession() as session, session.post(
            served.url + "/callbacks/messaging", json=body) as answer:
        return answer.status


async def test_sigterm_finishes_the_send_under_way_and_exits_0(fake: FakeBandwidth,
                                                               tmp_path: Path) -> None:
    served = Served(tmp_path, fake, [ORGANIZER])
    await served.start()
    fake.fail("messages", 3, 200, delay=1.0)  # each send takes a second
    a, b = invitees(2)
    assert await post(served, inbound_text(ORGANIZER, f"{a} {b}")) == 200
    await asyncio.sleep(0.3)  # the three sends are under way
    began = time.monotonic()
    assert await served.terminate() == 0
    assert time.monotonic() - began < 5
    assert len(fake.texts) == 3  # finished, not cut off
    # and the next start does not send them again
    await served.start()
    await asyncio.sleep(1.0)
    await served.stop()
    assert len(fake.texts) == 3


async def test_the_next_start_resumes_the_outbox(fake: FakeBandwidth, tmp_path: Path) -> None:
    served = Served(tmp_path, fake, [ORGANIZER])
    await served.start()
    fake.fail("*", 10_000, 503)
    a, b = invitees(2)
    assert await post(served, inbound_text(ORGANIZER, f"{a} {b}")) == 200
    await asyncio.sleep(0.3)
    assert await served.terminate() == 0
    assert fake.texts == []
    fake.faults.clear()
    await served.start()
    try:
        await wait_for(lambda: len(fake.texts) == 3, timeout=10)
    finally:
        await served.stop()


async def test_a_second_server_on_the_same_database_is_refused(fake: FakeBandwidth,
                                                               tmp_path: Path) -> None:
    first = Served(tmp_path, fake, [ORGANIZER])
    await first.start()
    second = Served(tmp_path, fake, [ORGANIZER])  # another port, the same database
    with pytest.raises(RuntimeError, match="exited 1"):
        await second.start()
    log = (tmp_path / "serve.log").read_text()
    assert f"another confcall serve is using {tmp_path / 'confcall.db'}" in log
    assert "Traceback" not in log
    await first.kill()  # a crash lets go of the database: the next server starts
    await second.start()
    await second.stop()


async def test_two_replicas_on_postgresql_lose_nothing_while_one_is_killed(
        fake: FakeBandwidth, tmp_path: Path, postgres_cluster: Any) -> None:
    """Two `confcall serve` on one PostgreSQL database behind a load balancer (the driver
    spreads the callbacks, replays some on the other replica, posts some to both at once);
    one of them SIGKILLed at random moments while the other serves. A dead replica's rows
    are taken over once its lease (3 s here) runs out."""
    url = postgres_cluster.database()
    report = await chaos.run(fake, tmp_path, kills=8, flows=6, seed=11, store_url=url,
                             replicas=2, CONFCALL_OUTBOX_LEASE_SECONDS="3")
    print(report.line())
    assert_nothing_lost(report, kills=8, flows=6)
    reader = PostgresReads.open(url)
    try:
        check_invariants(reader)
    finally:
        reader.close()
