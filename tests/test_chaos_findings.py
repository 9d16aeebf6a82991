"""What the fault runs of benchmarks/chaos.py found, each as the smallest run that shows it:
a start on a full disk says so in one line, and does not call it a damaged database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import chaos
import pytest
from conftest import ORGANIZER, inbound_text, invitees, wait_for
from fake_bandwidth import FakeBandwidth
from served import Served


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs for the database (root only)."""
    folder = tmp_path / "disk"
    problem = chaos.mount_small_disk(folder, "2m")
    if problem is not None:
        pytest.skip(problem)
    try:
        yield folder
    finally:
        chaos.unmount(folder)


async def start_on_a_full_disk(served: Served, disk: Path) -> str:
    """Start `served` while `disk` is full: it must stop (systemd starts it again,
    Restart=on-failure, until it can). What it logged meanwhile."""
    filler = chaos.DiskFull(disk)
    await filler.apply()
    log = served.workdir / f"{served.name}.log"
    before = len(log.read_text())
    try:
        with pytest.raises(RuntimeError, match="exited 1"):
            await served.start(timeout=10)
    finally:
        filler.release()
    said = log.read_text()[before:]
    assert "Traceback" not in said, said[-600:]
    assert "damaged" not in said, said[-600:]  # a full disk is not a damaged database
    return said


async def test_a_start_on_a_full_disk_says_so_in_one_line(fake: FakeBandwidth, tmp_path: Path,
                                                          small_disk: Path) -> None:
    database = small_disk / "confcall.db"
    served = Served(tmp_path, fake, [ORGANIZER], CONFCALL_STORE_PATH=str(database))
    await served.start()
    fake.fail("messages", 3, 200, delay=5)  # the three texts stay on their way
    a, b = invitees(2)
    async with aiohttp.ClientSession() as session, session.post(
            served.url + "/callbacks/messaging", json=inbound_text(ORGANIZER, f"{a} {b}")) as ok:
        assert ok.status == 200
    await wait_for(lambda: fake.requests >= 3)
    await served.kill()  # leased and never settled: the next start must mark them doubtful
    said = await start_on_a_full_disk(served, small_disk)
    assert "error: cannot write" in said and "the disk is full" in said, said[-600:]
    await served.start()  # the disk has room again: the texts go out after all, as doubtful
    try:
        await wait_for(lambda: all(row.status == "sent" for row in chaos.outbox_of(database)))
    finally:
        await served.stop()
    texts = [row for row in chaos.outbox_of(database) if row.kind == "text"]
    assert len(texts) == 3 and all(row.doubtful for row in texts), texts


async def test_a_full_disk_after_a_clean_stop_is_not_called_damage(
        fake: FakeBandwidth, tmp_path: Path, small_disk: Path) -> None:
    database = small_disk / "confcall.db"
    served = Served(tmp_path, fake, [ORGANIZER], CONFCALL_STORE_PATH=str(database))
    await served.start()
    assert await served.terminate() == 0
    said = await start_on_a_full_disk(served, small_disk)
    assert "error: cannot use" in said and "disk full" in said, said[-600:]
