"""Secrets stay secret, numbers are masked in logs, old records are pruned."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import LINE, ORGANIZER, STRANGER, StartLine, invitees, voice_event, wait_for
from fake_bandwidth import FakeBandwidth
from test_cli import applications, invoke, write_config

from confcall.config import load_config
from confcall.logs import Formatter
from confcall.render import banner
from confcall.store.sqlite import SqliteStore as Store

BANDWIDTH_SECRET = "bw-pass-Zq81xT"
CALLBACK_SECRET = "cb-pass-Lk55pY"


async def test_secrets_appear_in_no_log_error_or_output(
    start_line: StartLine, fake: FakeBandwidth, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.password = BANDWIDTH_SECRET
    line = await start_line(server__callback_username="confcall",
                            server__callback_password=CALLBACK_SECRET,
                            bandwidth__password=BANDWIDTH_SECRET)
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = line.active().id
    await line.join(name, a, "c-a", "2026-11-25T10:00:00.000Z")
    await line.post("/callbacks/messaging", [{"bad": "body"}])
    await line.client.post("/callbacks/messaging", json=[],
                           headers={"Authorization": "Basic d3Jvbmc6d3Jvbmc="})
    fake.fail("messages", 1, 500)
    await line.text(ORGANIZER, "bye")
    await wait_for(lambda: any(t["text"] == "bye" for t in fake.texts), timeout=8)

    applications(fake, str(line.client.make_url("")).rstrip("/"))
    config = str(write_config(tmp_path / "c.toml", line))
    outputs = [(await invoke("status", "--config", config, "--json")).output,
               (await invoke("check", "--config", config, "--json")).output,
               (await invoke("history", "--config", config, "--json")).output]
    (tmp_path / "bad.toml").write_text(
        f'[bandwidth]\npassword = "{BANDWIDTH_SECRET}"\n[server]\nport = "x"\n')
    outputs.append((await invoke("status", "--config", str(tmp_path / "bad.toml"))).output)

    assert '"passed": true' in outputs[1]  # check ran, with the right credentials
    everything = "\n".join([*(r.getMessage() for r in caplog.records), *outputs])
    for secret in (BANDWIDTH_SECRET, CALLBACK_SECRET):
        assert secret not in everything


@pytest.mark.parametrize("masked", [True, False])
async def test_numbers_are_masked_in_every_log_line(start_line: StartLine, masked: bool,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.setFormatter(Formatter(mask_numbers=masked))  # as serve's handler is
    line = await start_line(log__mask_numbers=masked)
    a, b = invitees(2)
    other = "+12015550150"
    await line.text(ORGANIZER, f"{a} {b}")  # "text 2 (invite) sent to +1…"
    await line.text(ORGANIZER, f"{a} {b}", line=other)  # "sent to +1…, not +1…"
    await line.call(STRANGER, "c-x")
    answer = await line.post("/callbacks/voice/initiate", voice_event(
        "initiate", **{"from": STRANGER, "to": other, "callId": "c-y"}))  # "a call to +1…"
    assert answer.status == 200
    await line.settle()
    logged = caplog.text
    print(logged)
    for number in (a, b, ORGANIZER, STRANGER, other, LINE):
        assert (number in logged) is not masked, number
    if masked:
        assert "+1201***0110" in logged and "+1201***0150" in logged


async def test_old_callback_records_are_pruned_at_start(start_line: StartLine,
                                                        tmp_path: Path) -> None:
    store = Store.open(tmp_path / "confcall.db")
    with store.transaction():
        store.claim("old", time.time() - 40 * 86400)
        store.claim("recent", time.time() - 2 * 86400)
    store.close()
    line = await start_line(store__retain_days=30)
    await wait_for(lambda: line.store.counts()["processed"] == 1)
    [(kept,)] = line.store.db.execute("SELECT key FROM processed").fetchall()
    assert kept == "recent"


def test_banner_warns_when_exposed_without_credentials() -> None:
    from rich.console import Console

    def shown(**values: Any) -> str:
        console = Console(record=True, width=100)
        console.print(banner(load_config(None, {}, values)))
        return console.export_text()

    live = {"bandwidth.account_id": "1", "bandwidth.username": "u",
            "bandwidth.password": "p", "bandwidth.phone_number": "+12015550100",
            "organizers.numbers": ["+12015550101"]}
    assert "no callback credentials" in shown(**live, **{"server.host": "0.0.0.0"})
    assert "no callback credentials" not in shown(**live)
    assert "no callback credentials" not in shown(
        **live, **{"server.host": "0.0.0.0", "server.callback_username": "u",
                   "server.callback_password": "p"})
    assert "sandbox" in shown()


async def test_the_log_tells_each_join_leave_and_end_once(start_line: StartLine,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    line = await start_line()
    (a,) = invitees(1)
    await line.text(ORGANIZER, a)
    name = line.active().id
    for _ in range(2):  # Bandwidth may deliver the same callback twice
        await line.call(a, "c-a")
        await line.conference("conferenceCreated", name)
        await line.join(name, a, "c-a", "2026-11-25T10:00:00.000Z")
    await line.text(ORGANIZER, "bye")
    for _ in range(2):
        await line.leave(name, a, "c-a", "2026-11-25T10:05:00.000Z")
        await line.conference("conferenceCompleted", name)
    await line.settle()

    logged = [r.getMessage() for r in caplog.records if r.name == "confcall.webhooks"]
    voice = [m for m in logged if not m.startswith("text from")]
    assert voice == [f"{a} joined {name} (call c-a)",
                     f"{a} left {name} (call c-a)",
                     f"{name} ended"]
