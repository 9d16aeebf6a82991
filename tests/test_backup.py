"""`confcall backup` copies the live database consistently while the server writes it;
`confcall restore` puts a copy back, never under a running server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
from pathlib import Path

from conftest import ORGANIZER, StartLine, invitees, wait_for
from test_cli import invoke, runner, write_config

from confcall.cli import app
from confcall.store.sqlite_reads import SqliteReads

T0 = "2026-11-25T10:00:00.000Z"


async def test_backup_mid_flow_is_a_consistent_private_copy(start_line: StartLine,
                                                           tmp_path: Path) -> None:
    line = await start_line()
    numbers = invitees(10)
    await line.text(ORGANIZER, " ".join(numbers))
    name = line.active().id
    config = str(write_config(tmp_path / "c.toml", line))
    target = tmp_path / "backups" / "copy.db"

    async def callbacks() -> None:  # the server keeps writing while the copy is taken
        for i in range(40):
            await line.join(name, numbers[i % 10], f"c-{i}", f"2026-11-25T10:00:{i:02d}.000Z")

    copied, _ = await asyncio.gather(invoke("backup", str(target), "--config", config,
                                            "--json"), callbacks())
    assert copied.exit_code == 0, copied.output
    assert json.loads(copied.output)["conferences"] == 1
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with sqlite3.connect(target) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        joined = db.execute("SELECT COUNT(*) FROM members").fetchone()[0]
    assert 0 <= joined <= 40  # the database as of one moment
    assert not list(target.parent.glob(".*partial"))

    (tmp_path / "b.toml").write_text(f'[store]\npath = "{target}"\n')
    shown = await invoke("status", "--config", str(tmp_path / "b.toml"), "--json")
    assert json.loads(shown.output)["active"][0]["id"] == name

    again = await invoke("backup", str(target), "--config", config)
    assert again.exit_code == 1 and "exists" in again.output
    assert (await invoke("backup", str(target), "--config", config, "--force")).exit_code == 0


async def test_restore_is_refused_while_a_server_uses_the_database(start_line: StartLine,
                                                                  tmp_path: Path) -> None:
    line = await start_line()
    [a] = invitees(1)
    await line.text(ORGANIZER, a)
    config = str(write_config(tmp_path / "c.toml", line))
    target = tmp_path / "copy.db"
    assert (await invoke("backup", str(target), "--config", config)).exit_code == 0

    refused = await invoke("restore", str(target), "--config", config, "--yes")
    assert refused.exit_code == 1
    assert "a confcall serve is using" in refused.output
    assert "Traceback" not in refused.output
    assert line.store.counts()["conferences"] == 1  # untouched, and still serving
    await line.text(ORGANIZER, "bye")


async def test_restore_puts_the_copy_back_and_the_next_server_goes_on_from_it(
        start_line: StartLine, tmp_path: Path) -> None:
    first = await start_line()
    [a] = invitees(1)
    await first.text(ORGANIZER, a)
    kept = first.active().id
    config = str(write_config(tmp_path / "c.toml", first))
    copy = tmp_path / "copy.db"
    assert (await invoke("backup", str(copy), "--config", config)).exit_code == 0
    await first.text(ORGANIZER, "bye")  # after the backup: the restore undoes it
    await first.settle()
    await first.client.close()

    declined = await asyncio.to_thread(runner.invoke, app, ["restore", str(copy), "--config",
                                                            config], input="n\n")
    assert declined.exit_code == 1 and "nothing restored" in declined.output
    restored = await invoke("restore", str(copy), "--config", config, "--yes", "--json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output)["conferences"] == 1

    second = await start_line()
    assert second.active() is not None and second.active().id == kept
    await wait_for(lambda: second.store.backlog() == 0)


async def test_a_damaged_or_foreign_backup_is_refused(start_line: StartLine,
                                                      tmp_path: Path) -> None:
    line = await start_line()
    config = str(write_config(tmp_path / "c.toml", line))
    await line.client.close()
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("PRAGMA user_version = 99")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 500)
    for bad, why in ((foreign, "schema 99"), (junk, "not a confcall database")):
        result = await invoke("restore", str(bad), "--config", config, "--yes")
        assert result.exit_code == 1 and why in result.output, result.output
    assert SqliteReads.open(line.config.store_path).counts()["conferences"] == 0
