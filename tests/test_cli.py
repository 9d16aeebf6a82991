"""The command line, driven with Typer's CliRunner against real running servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import unused_port
from conftest import (
    ORGANIZER,
    OTHER_ORGANIZER,
    STRANGER,
    Line,
    StartLine,
    inbound_text,
    invitees,
    wait_for,
)
from fake_bandwidth import FIXTURES, FakeBandwidth
from typer.testing import CliRunner

from confcall.cli import app
from confcall.payloads import timestamp

runner = CliRunner()


def write_config(path: Path, line: Line, **extra: dict[str, Any]) -> Path:
    """A TOML file with the running line's settings (and `extra` sections merged in)."""
    config = line.config
    sections: dict[str, dict[str, Any]] = {
        "bandwidth": {
            "account_id": config.bandwidth.account_id,
            "username": config.bandwidth.username,
            "password": config.bandwidth.password,
            "phone_number": config.bandwidth.phone_number,
            "messaging_application_id": "93de2206-9669-4e07-948d-329f4b722ee2",
            "voice_application_id": "04e88489-df02-4e34-a0ee-27a91849555f",
            "messaging_api_url": config.bandwidth.messaging_api_url,
            "voice_api_url": config.bandwidth.voice_api_url,
            "account_api_url": config.bandwidth.account_api_url,
        },
        "organizers": {"numbers": list(config.organizers)},
        "server": {"public_url": str(line.client.make_url("")).rstrip("/")},
        "store": ({"url": config.store_url} if config.store_url
                  else {"path": str(config.store_path)}),
    }
    if config.server.callback_auth:
        sections["server"]["callback_username"] = config.server.callback_username
        sections["server"]["callback_password"] = config.server.callback_password
    for name, values in extra.items():
        sections.setdefault(name, {}).update(values)
    lines = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


async def invoke(*args: str) -> Any:
    """Run the CLI in a thread: it runs its own event loop, the servers run in this one."""
    return await asyncio.to_thread(runner.invoke, app, list(args))


def applications(fake: FakeBandwidth, public_url: str, *, creds: bool = True,
                 inbound: str | None = None) -> None:
    """The account API knows the two applications, set up for `public_url`."""
    messaging = (FIXTURES / "applications-response.messaging.xml").read_text()
    voice = (FIXTURES / "applications-response.voice.xml").read_text()
    messaging = messaging.replace("https://confcall.example.com", public_url)
    voice = voice.replace("https://confcall.example.com", public_url)
    if inbound is not None:
        messaging = messaging.replace(f"{public_url}/callbacks/messaging</Inbound",
                                      f"{inbound}</Inbound")
    if not creds:
        voice = voice.replace("<CallbackCreds>\n            <UserId>confcall</UserId>\n"
                              "        </CallbackCreds>", "")
    fake.applications["93de2206-9669-4e07-948d-329f4b722ee2"] = messaging
    fake.applications["04e88489-df02-4e34-a0ee-27a91849555f"] = voice


# --- help and start-up ----------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "check", "setup", "simulate-text",
                                     "simulate-call", "status", "history", "end", "ring",
                                     "add", "backup", "restore"])
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "--config" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("confcall ")


def test_the_cli_does_not_import_aiohttp() -> None:
    code = ("import sys, confcall.cli, confcall.report, confcall.render, confcall.store; "
            "print('aiohttp' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_bad_config_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[server]\nport = 'x'\n")
    result = runner.invoke(app, ["status", "--config", str(tmp_path / "bad.toml")])
    assert result.exit_code == 1
    assert "server.port" in result.output
    assert "Traceback" not in result.output


def test_errors_are_shown_verbatim(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("port = 1\n")
    result = runner.invoke(app, ["status", "--config", str(tmp_path / "bad.toml")])
    assert "`port` must be a [section], not a value" in result.output


def test_status_without_a_database_says_so(tmp_path: Path) -> None:
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "no database at confcall.db" in result.output


@pytest.mark.parametrize("command", [["simulate-text", "--from", ORGANIZER, "hi"],
                                     ["simulate-call", "--from", ORGANIZER]])
@pytest.mark.parametrize("scheme", ["http://", ""])
def test_server_not_running(command: list[str], scheme: str) -> None:
    port = unused_port()
    result = runner.invoke(app, [*command, "--url", f"{scheme}127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"cannot reach http://127.0.0.1:{port} — is `confcall serve` running?" in result.output


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:8080", "http://", "127.0.0.1:port"])
@pytest.mark.parametrize("command", [["simulate-text", "--from", ORGANIZER, "hi"],
                                     ["simulate-call", "--from", ORGANIZER],
                                     ["end", "--organizer", ORGANIZER]])
def test_a_url_that_is_not_http_is_named(command: list[str], url: str) -> None:
    result = runner.invoke(app, [*command, "--url", url])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: --url: {url!r} is not an http:// or https:// URL (or HOST:PORT)"]


def test_config_goes_before_or_after_the_command(tmp_path: Path) -> None:
    from confcall.store.sqlite import SqliteStore as Store

    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text(f'[store]\npath = "{name}.db"\n')
    Store.open(tmp_path / "a.db").close()
    for args in (["--config", "a.toml", "status"], ["status", "--config", "a.toml"],
                 ["-c", "a.toml", "history"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    # the command's own --config wins over the one before it
    both = runner.invoke(app, ["--config", "a.toml", "status", "--config", "b.toml"])
    assert both.exit_code == 1 and "no database at b.db" in both.output
    # and one invocation's --config does not linger into the next
    plain = runner.invoke(app, ["status"])
    assert plain.exit_code == 1 and "no database at confcall.db" in plain.output
    assert "--config" in runner.invoke(app, ["--help"]).output


def test_reading_commands_run_with_a_partial_live_config(tmp_path: Path) -> None:
    from confcall.store.sqlite import SqliteStore as Store

    Store.open(tmp_path / "confcall.db").close()
    partial = {"BW_ACCOUNT_ID": "9900000", "BW_USERNAME": "api-user-7f2c"}
    for command in (["status"], ["status", "--json"], ["history"], ["history", "--json"]):
        result = runner.invoke(app, command, env=partial)
        assert result.exit_code == 0, (command, result.output)
    # what talks to Bandwidth or the server still needs all of it, named as the person names it
    result = runner.invoke(app, ["simulate-text", "--from", ORGANIZER, "hi"], env=partial)
    assert result.exit_code == 1
    assert "BW_PASSWORD" in result.output and "USER_PHONE_NUMBER" in result.output
    assert "CONFCALL_" not in result.output


def test_a_bad_number_is_named() -> None:
    result = runner.invoke(app, ["simulate-text", "--from", "bob", "hi"])
    assert result.exit_code == 1
    assert "--from: 'bob' is not a phone number" in result.output


# --- against a running server ---------------------------------------------------------


async def test_simulate_status_end_history(line: Line, tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "c.toml", line))
    a, b = invitees(2)
    result = await invoke("simulate-text", "--config", config, "--url",
                          str(line.client.make_url("")), "--from", ORGANIZER, f"{a}, {b}")
    assert result.exit_code == 0, result.output
    assert "server answered 200" in result.output
    await wait_for(lambda: len(line.fake.texts) == 3)
    await line.settle()  # Bandwidth has the texts: their rows are marked sent just after

    url = str(line.client.make_url(""))
    joined = await invoke("simulate-call", "--config", config, "--url", url, "--from", a)
    name = line.active().id
    assert joined.exit_code == 0, joined.output
    assert f"{a} joins conference {name}" in joined.output
    assert "<Conference" in joined.output
    # every line fits 80 columns but one holding a URL, which cannot be folded
    assert all(len(row) <= 80 or row.strip().startswith("conferenceEventUrl=")
               for row in joined.output.splitlines())
    refused = await invoke("simulate-call", "--config", config, "--url", url, "--from", STRANGER,
                           "--json")
    assert json.loads(refused.output)["verdict"] == "refused"

    # against a live server, simulate-call posts the member-join Bandwidth would send
    status = json.loads((await invoke("status", "--config", config, "--json")).output)
    [active] = status["active"]
    people = {p["number"]: p for p in active["participants"]}
    assert people[a]["state"] == "on_call"
    assert people[b]["state"] == "invited"
    assert people[a]["invitation"]["state"] == "sent"
    assert status["backlog"] == 0
    shown = (await invoke("status", "--config", config)).output
    assert "on call since" in shown and a in shown
    assert all(len(row) <= 80 for row in shown.splitlines())

    ended = await invoke("end", "--config", config, "--url", url, "--message", "bye now")
    assert ended.exit_code == 0, ended.output
    assert f"ending {name}" in ended.output
    await wait_for(lambda: any(t["text"] == "bye now" for t in line.fake.texts))
    assert [t["to"] for t in line.fake.texts if t["text"] == "bye now"] == [[a, b]]

    await line.leave(name, a, "c-a", timestamp(time.time() + 60))  # after the join
    await line.conference("conferenceCompleted", name)
    await wait_for(lambda: line.store.conference(name).status == "ended")
    history = json.loads((await invoke("history", "--config", config, "--json")).output)
    assert [h["id"] for h in history] == [name]
    assert history[0]["closing_text"] == "bye now"
    assert {p["number"]: p["state"] for p in history[0]["participants"]} == {
        a: "left", b: "never_joined"}
    shown = (await invoke("history", "--config", config)).output
    assert "never joined" in shown and "bye now" in shown
    nothing = (await invoke("status", "--config", config)).output
    assert "No active conference." in nothing and name in nothing


async def test_history_names_the_picture_that_closed_the_call(line: Line,
                                                             tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "c.toml", line))
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = (await wait_for(lambda: line.active())).id
    picture = "https://messaging.bandwidth.com/api/v2/users/9900000/media/pic.jpg"
    body = inbound_text(ORGANIZER, "")
    body[0]["message"]["media"] = [picture]
    assert (await line.post("/callbacks/messaging", body)).status == 200
    await wait_for(lambda: line.store.conference(name).status == "ended")
    [shown] = json.loads((await invoke("history", "--config", config, "--json")).output)
    assert (shown["closing_text"], shown["closing_media"]) == ("", [picture])
    assert "closing text: – (and 1 picture)" in (await invoke("history", "--config",
                                                              config)).output


async def test_end_needs_an_active_conference_and_a_choice(line: Line, tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "c.toml", line))
    url = str(line.client.make_url(""))
    result = await invoke("end", "--config", config, "--url", url)
    assert result.exit_code == 1 and "no active conference" in result.output
    await line.text(ORGANIZER, invitees(1)[0])
    await line.text(OTHER_ORGANIZER, invitees(1, start=130)[0])
    result = await invoke("end", "--config", config, "--url", url)
    assert result.exit_code == 1 and "--organizer" in result.output
    result = await invoke("end", "--config", config, "--url", url, "--organizer",
                          OTHER_ORGANIZER, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["closing_text"].startswith("The conference has ended")
    await wait_for(lambda: line.active(OTHER_ORGANIZER) is None)
    assert line.active(ORGANIZER) is not None


async def test_simulate_with_wrong_callback_credentials_is_one_line(
    start_line: StartLine, tmp_path: Path
) -> None:
    line = await start_line(server__callback_username="bw", server__callback_password="right")
    config = str(write_config(tmp_path / "c.toml", line,
                              server={"callback_password": "wrong"}))
    result = await invoke("simulate-text", "--config", config, "--url",
                          str(line.client.make_url("")), "--from", ORGANIZER, "hi")
    assert result.exit_code == 1
    assert "refused the callback credentials (401)" in result.output


async def test_end_without_a_database_needs_only_the_organizer(line: Line,
                                                               tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-here.db"  # this machine has no database: the server does
    config = str(write_config(tmp_path / "c.toml", line, store={"path": str(elsewhere)}))
    address = str(line.client.make_url("")).rstrip("/").removeprefix("http://")
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    name = line.active().id
    unnamed = await invoke("end", "--config", config, "--url", address)
    assert unnamed.exit_code == 1
    [error] = unnamed.output.strip().splitlines()
    assert "no database at" in error and "--organizer" in error
    ended = await invoke("end", "--config", config, "--url", address, "--organizer",
                         ORGANIZER, "--message", "bye all", "--json")
    assert ended.exit_code == 0, ended.output
    assert json.loads(ended.output) == {"conference": None, "organizer": ORGANIZER,
                                        "closing_text": "bye all", "status": 200}
    await wait_for(lambda: any(t["text"] == "bye all" for t in line.fake.texts))
    assert [t["to"] for t in line.fake.texts if t["text"] == "bye all"] == [[a, b]]
    assert line.store.conference(name).closing_text == "bye all"
    assert not elsewhere.exists()


async def test_status_says_why_a_text_is_still_queued(line: Line, tmp_path: Path) -> None:
    config = str(write_config(tmp_path / "c.toml", line))
    line.fake.fail("messages", 10_000, 503)
    a = invitees(1)[0]
    await line.text(ORGANIZER, a)
    await wait_for(lambda: all(row.attempts >= 2 for row in line.store.outbox()), timeout=10)
    report = json.loads((await invoke("status", "--config", config, "--json")).output)
    invitation = report["active"][0]["participants"][0]["invitation"]
    assert invitation["state"] == "queued"
    assert invitation["attempts"] >= 2
    assert invitation["detail"].startswith("Bandwidth answered 503")
    assert all(t["attempts"] >= 2 for t in report["active"][0]["texts"])
    shown = await asyncio.to_thread(runner.invoke, app, ["status", "--config", config],
                                    env={"COLUMNS": "250"})
    rows = [row for row in shown.output.splitlines() if a in row]
    assert re.search(r"queued \(\d+ attempts: Bandwidth answered 503", rows[0]), rows
    confirm = [row for row in shown.output.splitlines() if "other texts" in row]
    assert re.search(r"confirm to \+\d+: queued \(\d+ attempts: Bandwidth answered 503",
                     confirm[0]), confirm
    line.fake.faults.clear()


@pytest.fixture
def zone() -> Iterator[timezone]:
    """Local time five hours east of UTC, named EXT, for as long as the test runs."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "EXT-5"
    time.tzset()
    yield timezone(timedelta(hours=5))
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


async def test_times_on_screen_name_their_zone(line: Line, tmp_path: Path,
                                               zone: timezone) -> None:
    config = str(write_config(tmp_path / "c.toml", line))
    a = invitees(1)[0]
    await line.text(ORGANIZER, a)
    name = line.active().id
    await line.join(name, a, "c-a", "2026-01-01T10:20:30.000Z")
    report = json.loads((await invoke("status", "--config", config, "--json")).output)
    started = datetime.fromisoformat(report["active"][0]["started"]).astimezone(zone)
    shown = (await invoke("status", "--config", config)).output
    assert f"started {started:%Y-%m-%d %H:%M} EXT" in " ".join(shown.split()), shown
    assert "on call since 15:20:30 EXT" in shown
    await line.text(ORGANIZER, "bye")
    await line.leave(name, a, "c-a", "2026-01-01T10:25:00.000Z")
    await line.conference("conferenceCompleted", name)
    await wait_for(lambda: line.store.conference(name).status == "ended")
    [ended] = json.loads((await invoke("history", "--config", config, "--json")).output)
    finished = datetime.fromisoformat(ended["ended"]).astimezone(zone)
    shown = (await invoke("history", "--config", config)).output
    assert f"ended {finished:%Y-%m-%d %H:%M} EXT" in " ".join(shown.split()), shown


async def test_untrusted_text_is_shown_escaped(line: Line, tmp_path: Path,
                                               examples: Any) -> None:
    config = str(write_config(tmp_path / "c.toml", line))
    a, b = invitees(2)
    await line.text(ORGANIZER, f"{a} {b}")
    await line.settle()
    name = line.active().id
    tags = {t["to"][0]: t["tag"] for t in line.fake.texts if t["to"] != [ORGANIZER]}
    failed = examples("messaging-callback.messageFailed.json")
    failed[0].update(to=b, description="blocked \x1b]0;owned\x07\x1b[2J")
    failed[0]["message"].update(id="m-b", to=[b], tag=tags[b])
    assert (await line.post("/callbacks/messaging", failed)).status == 200
    await line.text(ORGANIZER, "bye \x1b[31mred\x1b[0m \u202eevil\u202c\x9b")
    wide = {"COLUMNS": "250"}
    status = await asyncio.to_thread(runner.invoke, app, ["status", "--config", config],
                                     env=wide)
    assert status.exit_code == 0, status.output
    assert "blocked \\x1b]0;owned\\x07\\x1b[2J" in status.output
    assert "bye \\x1b[31mred\\x1b[0m \\u202eevil\\u202c\\x9b" in status.output
    await line.conference("conferenceCompleted", name)
    await wait_for(lambda: line.store.conference(name).status == "ended")
    history = await asyncio.to_thread(runner.invoke, app, ["history", "--config", config],
                                      env=wide)
    assert "bye \\x1b[31mred\\x1b[0m \\u202eevil\\u202c\\x9b" in history.output
    assert "blocked \\x1b]0;owned" in history.output
    for shown in (status.output, history.output):
        assert not set(shown) & {"\x1b", "\x07", "\x9b", "\u202e", "\u202c"}


async def test_simulate_call_hides_the_callback_password(start_line: StartLine,
                                                         tmp_path: Path) -> None:
    line = await start_line(server__callback_username="bw",
                            server__callback_password="cb-secret-5e1")
    config = str(write_config(tmp_path / "c.toml", line))
    url = str(line.client.make_url(""))
    a = invitees(1)[0]
    await line.text(ORGANIZER, a)
    shown = await invoke("simulate-call", "--config", config, "--url", url, "--from", a)
    assert shown.exit_code == 0, shown.output
    assert 'password="***"' in shown.output and 'username="bw"' in shown.output
    as_json = await invoke("simulate-call", "--config", config, "--url", url, "--from", a,
                           "--json")
    assert 'password="***"' in json.loads(as_json.output)["bxml"]
    for output in (shown.output, as_json.output):
        assert "cb-secret-5e1" not in output


# --- check ----------------------------------------------------------------------------


async def run_check(line: Line, tmp_path: Path, **extra: dict[str, Any]) -> tuple[int, Any]:
    config = str(write_config(tmp_path / "c.toml", line, **extra))
    result = await invoke("check", "--config", config, "--json")
    return result.exit_code, json.loads(result.output)


async def test_check_passes_on_a_good_setup(start_line: StartLine, tmp_path: Path) -> None:
    line = await start_line(server__callback_username="confcall", server__callback_password="p")
    public = str(line.client.make_url("")).rstrip("/")
    applications(line.fake, public)
    code, report = await run_check(line, tmp_path)
    assert code == 0, report
    assert report["passed"] and report["mode"] == "live"
    assert [(c["name"], c["status"]) for c in report["checks"]] == [
        ("config", "ok"), ("credentials", "ok"), ("messaging application", "ok"),
        ("messaging inbound URL", "ok"), ("messaging status URL", "ok"),
        ("messaging callback credentials", "ok"), ("voice application", "ok"),
        ("voice initiated URL", "ok"), ("voice status URL", "ok"),
        ("voice callback credentials", "ok"), ("public URL", "ok")]
    shown = await invoke("check", "--config", str(tmp_path / "c.toml"))
    assert "✓" in shown.output and "✗" not in shown.output


async def test_check_finds_a_wrong_callback_url(line: Line, tmp_path: Path) -> None:
    public = str(line.client.make_url("")).rstrip("/")
    applications(line.fake, public, inbound="https://old.example.com/sms")
    code, report = await run_check(line, tmp_path)
    assert code == 1
    [bad] = [c for c in report["checks"] if c["status"] == "fail"]
    assert bad["name"] == "messaging inbound URL"
    assert bad["fix"] == f"set it to {public}/callbacks/messaging"


async def test_check_finds_missing_callback_credentials(start_line: StartLine,
                                                        tmp_path: Path) -> None:
    line = await start_line(server__callback_username="confcall", server__callback_password="p")
    applications(line.fake, str(line.client.make_url("")).rstrip("/"), creds=False)
    code, report = await run_check(line, tmp_path)
    assert code == 1
    [bad] = [c for c in report["checks"] if c["status"] == "fail"]
    assert bad["name"] == "voice callback credentials"
    assert "CallbackCreds is not set" in bad["detail"]


async def test_check_reports_rejected_credentials(line: Line, tmp_path: Path) -> None:
    applications(line.fake, str(line.client.make_url("")).rstrip("/"))
    code, report = await run_check(line, tmp_path, bandwidth={"password": "wrong-secret"})
    assert code == 1
    [bad] = [c for c in report["checks"] if c["status"] == "fail"]
    assert bad["detail"] == "username/password rejected (401)"
    assert "wrong-secret" not in json.dumps(report)


async def test_check_reports_bandwidth_unreachable(line: Line, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/api"
    code, report = await run_check(line, tmp_path, bandwidth={"account_api_url": dead})
    assert code == 1
    assert any("cannot reach Bandwidth" in c["detail"] for c in report["checks"])


async def test_check_warns_when_public_and_unauthenticated(line: Line, tmp_path: Path) -> None:
    applications(line.fake, "https://confcall.example.com")
    code, report = await run_check(line, tmp_path,
                                   server={"public_url": "https://confcall.example.com"})
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["callback credentials"] == "warn"
    assert statuses["public URL"] == "fail"
    assert code == 1


def test_check_in_sandbox_mode_says_so() -> None:
    port = unused_port()
    result = runner.invoke(app, ["check", "--json"], env={"CONFCALL_SERVER_PORT": str(port)})
    report = json.loads(result.output)
    assert report["mode"] == "sandbox"
    assert [c["name"] for c in report["checks"]] == ["config", "mode", "public URL"]
    assert result.exit_code == 1  # nothing is listening on that port


def test_status_json_of_an_empty_database(tmp_path: Path) -> None:
    from confcall.store.sqlite import SqliteStore as Store

    Store.open(tmp_path / "confcall.db").close()
    result = runner.invoke(app, ["status", "--json"])
    assert json.loads(result.output) == {"active": [], "last_ended": None, "backlog": 0}
    assert "No active conference" in runner.invoke(app, ["status"]).output
    assert "No conference has ended yet" in runner.invoke(app, ["history"]).output




def test_python_dash_m_runs_the_cli() -> None:
    out = subprocess.run([sys.executable, "-m", "confcall", "--version"], capture_output=True,
                         text=True, check=True)
    assert out.stdout.startswith("confcall ")


def test_status_watch_refreshes_until_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    from confcall.store.sqlite import SqliteStore as Store

    Store.open(tmp_path / "confcall.db").close()
    watcher = subprocess.Popen([sys.executable, "-m", "confcall", "status", "--watch"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(2.5)
    watcher.send_signal(signal.SIGINT)
    out, err = watcher.communicate(timeout=10)
    assert watcher.returncode == 0, err
    assert "No active conference." in out
    assert "Traceback" not in err


def test_no_colour_when_not_a_terminal(tmp_path: Path) -> None:
    from confcall.store.sqlite import SqliteStore as Store

    Store.open(tmp_path / "confcall.db").close()
    for command in (["status"], ["history"], ["check"]):
        assert "\x1b[" not in runner.invoke(app, command).output
