"""`confcall setup` against the fake account API, and `confcall check` as the README's set-up
steps leave things."""

from __future__ import annotations

import asyncio
import json
import stat
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
from conftest import Line, StartLine
from fake_bandwidth import ACCOUNT_ID, FIXTURES, PASSWORD, USERNAME, FakeBandwidth
from served import Served
from test_cli import applications, write_config
from typer.testing import CliRunner

from confcall.cli import app

MESSAGING_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
VOICE_ID = "04e88489-df02-4e34-a0ee-27a91849555f"
OLD = "https://old.example.com"

runner = CliRunner()


async def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return await asyncio.to_thread(runner.invoke, app, list(args), input=input, env=env)


def public(line: Line) -> str:
    return str(line.client.make_url("")).rstrip("/")


def without_ids(path: Path) -> Path:
    """The config file with no application id in it."""
    path.write_text("".join(row for row in path.read_text().splitlines(keepends=True)
                            if "application_id" not in row))
    return path


def put_bodies(fake: FakeBandwidth) -> dict[str, str]:
    return dict(fake.application_updates)


async def line_with_credentials(start_line: StartLine) -> Line:
    return await start_line(server__callback_username="confcall",
                            server__callback_password="cb-secret-1")


# --- writing the applications ----------------------------------------------------------


async def test_setup_fixes_wrong_urls_and_keeps_everything_else(
    start_line: StartLine, tmp_path: Path,
) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    before = dict(line.fake.applications)
    config = str(write_config(tmp_path / "c.toml", line))

    result = await invoke("setup", "--config", config, "--yes")

    assert result.exit_code == 0, result.output
    assert f"wrote the messaging application {MESSAGING_ID}" in result.output
    assert f"wrote the voice application {VOICE_ID}" in result.output
    sent = put_bodies(line.fake)
    assert set(sent) == {MESSAGING_ID, VOICE_ID}

    def creds(name: str) -> str:
        return (f"<{name}>\n            <UserId>confcall</UserId>\n"
                f"            <Password>cb-secret-1</Password>\n        </{name}>")

    def old_creds(name: str) -> str:
        return f"<{name}>\n            <UserId>confcall</UserId>\n        </{name}>"

    def application_of(document: str) -> str:
        return document[document.index("<Application>"):
                        document.index("</Application>") + len("</Application>")]

    # every byte as read, but the URLs and the credentials (now with the password)
    assert sent[MESSAGING_ID] == (
        application_of(before[MESSAGING_ID]).replace(OLD, public(line))
        .replace(old_creds("InboundCallbackCreds"), creds("InboundCallbackCreds"))
        .replace(old_creds("OutboundCallbackCreds"), creds("OutboundCallbackCreds")))
    assert sent[VOICE_ID] == (application_of(before[VOICE_ID]).replace(OLD, public(line))
                              .replace(old_creds("CallbackCreds"), creds("CallbackCreds")))
    # ... and setup ends with check, which now passes on every row
    assert "✗" not in result.output
    assert "public URL" in result.output and "voice callback credentials" in result.output
    assert "cb-secret-1" not in result.output
    follow_up = await invoke("check", "--config", config, "--json")
    assert json.loads(follow_up.output)["passed"], follow_up.output


async def test_setup_before_after_table_and_dry_run_writes_nothing(
    start_line: StartLine, tmp_path: Path,
) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    before = dict(line.fake.applications)
    config = str(write_config(tmp_path / "c.toml", line))

    result = await invoke("setup", "--config", config, "--dry-run")

    assert result.exit_code == 0, result.output
    assert line.fake.application_updates == []
    assert line.fake.applications == before
    assert "dry run: nothing written" in result.output
    flat = " ".join(result.output.split())
    assert (f"InboundCallbackUrl {OLD}/callbacks/messaging → {public(line)}/callbacks/messaging"
            in flat)
    assert "CallInitiatedMethod POST (unchanged)" in flat
    assert "CallbackCreds user confcall → user confcall + password" in flat
    assert "accepted by the account API" not in result.output  # no check after a dry run


async def test_setup_asks_first_and_no_writes_nothing(start_line: StartLine,
                                                      tmp_path: Path) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    config = str(write_config(tmp_path / "c.toml", line))

    declined = await invoke("setup", "--config", config, input="n\n")
    assert declined.exit_code == 1
    assert "Write these settings to both applications?" in declined.output
    assert "nothing written" in declined.output
    assert line.fake.application_updates == []

    accepted = await invoke("setup", "--config", config, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert len(line.fake.application_updates) == 2


async def test_setup_with_rejected_api_credentials_is_one_line(start_line: StartLine,
                                                               tmp_path: Path) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    config = str(write_config(tmp_path / "c.toml", line, bandwidth={"password": "wrong-pw-55"}))

    result = await invoke("setup", "--config", config, "--yes")

    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0, result.output
    assert result.output.startswith("error: Bandwidth rejected the API username/password (401)")
    assert "wrong-pw-55" not in result.output
    assert line.fake.application_updates == []


async def test_generate_credentials_saves_a_0600_file_and_writes_both_applications(
    line: Line, tmp_path: Path,
) -> None:
    applications(line.fake, OLD, creds=False)
    path = write_config(tmp_path / "c.toml", line)
    original = ("# the line's settings\n" + path.read_text().replace(
        "[server]\n", "[server]\nhost = \"127.0.0.1\"  # keep this comment\n")
        + "\n[log]\nmask_numbers = true\n")
    path.write_text(original)
    path.chmod(0o644)

    result = await invoke("setup", "--config", str(path), "--generate-credentials", "--yes")

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = tomllib.loads(path.read_text())["server"]
    user, password = saved["callback_username"], saved["callback_password"]
    assert user.startswith("confcall-") and len(password) >= 32
    # the rest of the file is as it was: the two new lines are all that was added
    added = [row for row in path.read_text().splitlines() if row not in original.splitlines()]
    assert added == [f'callback_username = "{user}"', f'callback_password = "{password}"']
    assert path.read_text().replace("\n".join(added) + "\n", "") == original
    sent = put_bodies(line.fake)
    for application_id, count in ((MESSAGING_ID, 2), (VOICE_ID, 1)):
        body = sent[application_id]
        assert body.count(f"<UserId>{user}</UserId>") == count
        assert body.count(f"<Password>{password}</Password>") == count
    assert password not in result.output
    assert "✗" not in result.output


async def test_generate_credentials_without_a_config_file_makes_confcall_toml(
    line: Line, tmp_path: Path,
) -> None:
    applications(line.fake, OLD)
    env = readme_environment(line.fake, public(line))
    result = await invoke("setup", "--messaging-app", MESSAGING_ID, "--voice-app", VOICE_ID,
                          "--generate-credentials", "--yes", env=env)
    assert result.exit_code == 0, result.output
    made = tmp_path / "confcall.toml"  # the tests run in tmp_path
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert set(tomllib.loads(made.read_text())["server"]) == {"callback_username",
                                                               "callback_password"}


async def test_generate_credentials_refuses_to_replace_configured_ones(
    start_line: StartLine, tmp_path: Path,
) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    path = write_config(tmp_path / "c.toml", line)
    text = path.read_text()
    result = await invoke("setup", "--config", str(path), "--generate-credentials", "--yes")
    assert result.exit_code == 1
    assert "callback credentials are already configured (user confcall)" in result.output
    assert path.read_text() == text and line.fake.application_updates == []


async def test_setup_without_callback_credentials_says_which_option(line: Line,
                                                                    tmp_path: Path) -> None:
    applications(line.fake, OLD)
    config = str(write_config(tmp_path / "c.toml", line))
    result = await invoke("setup", "--config", config, "--yes")
    assert result.exit_code == 1
    assert "add --generate-credentials" in result.output
    assert line.fake.application_updates == []


# --- choosing the applications -----------------------------------------------------------


async def test_without_ids_setup_lists_the_applications_then_check_finds_them(
    start_line: StartLine, tmp_path: Path,
) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    line.fake.applications["0cb0112b-5998-4c81-999a-0d3fb5e3f8e2"] = (
        (FIXTURES / "applications-response.voice.xml").read_text()
        .replace(VOICE_ID, "0cb0112b-5998-4c81-999a-0d3fb5e3f8e2")
        .replace("team-line-voice", "another-voice-app"))
    config = str(without_ids(write_config(tmp_path / "c.toml", line)))

    listed = await invoke("setup", "--config", config)

    assert listed.exit_code == 1
    flat = " ".join(listed.output.split())
    assert (f"Messaging-V2 applications {MESSAGING_ID} team-line-messaging InboundCallbackUrl "
            f"{OLD}/callbacks/messaging") in flat
    assert (f"Voice-V2 applications {VOICE_ID} team-line-voice CallInitiatedCallbackUrl "
            f"{OLD}/callbacks/voice/initiate") in flat
    assert "another-voice-app" in flat
    assert ("choose from the list above: confcall setup --messaging-app ID --voice-app ID (or "
            "set bandwidth.messaging_application_id and bandwidth.voice_application_id)") in flat
    assert line.fake.application_updates == []

    chosen = await invoke("setup", "--config", config, "--messaging-app", MESSAGING_ID,
                          "--voice-app", VOICE_ID, "--yes")
    assert chosen.exit_code == 0, chosen.output

    # with still no ids configured, check finds the two by the URLs setup wrote
    checked = await invoke("check", "--config", config, "--json")
    report = json.loads(checked.output)
    assert checked.exit_code == 0, report
    rows = {c["name"]: c for c in report["checks"]}
    assert rows["messaging application"]["detail"] == (
        f"{MESSAGING_ID} (team-line-messaging), found by its InboundCallbackUrl")
    assert rows["voice application"]["detail"] == (
        f"{VOICE_ID} (team-line-voice), found by its CallInitiatedCallbackUrl")
    # and a second setup needs no ids either
    again = await invoke("setup", "--config", config, "--dry-run")
    assert again.exit_code == 0 and "found by its InboundCallbackUrl" in again.output


async def test_swapped_ids_fail_with_the_fix(start_line: StartLine, tmp_path: Path) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    config = str(write_config(tmp_path / "c.toml", line))

    result = await invoke("setup", "--config", config, "--messaging-app", VOICE_ID,
                          "--voice-app", MESSAGING_ID, "--yes")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"error: {VOICE_ID} is a Voice-V2 application, not Messaging-V2: the two ids are "
        "swapped: exchange --messaging-app and --voice-app")
    assert line.fake.application_updates == []

    swapped = str(write_config(tmp_path / "s.toml", line, bandwidth={
        "messaging_application_id": VOICE_ID, "voice_application_id": MESSAGING_ID}))
    checked = await invoke("check", "--config", swapped, "--json")
    report = json.loads(checked.output)
    assert checked.exit_code == 1
    rows = {c["name"]: c for c in report["checks"]}
    assert rows["credentials"]["status"] == "ok"
    assert rows["messaging application"]["status"] == "fail"
    assert rows["messaging application"]["fix"] == (
        "the two ids are swapped: exchange bandwidth.messaging_application_id and "
        "bandwidth.voice_application_id")
    assert rows["voice application"]["detail"] == (
        f"{MESSAGING_ID} is a Messaging-V2 application, not Voice-V2")


async def test_credentials_setup_cannot_keep_stop_it(start_line: StartLine,
                                                     tmp_path: Path) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, OLD)
    line.fake.applications[VOICE_ID] = line.fake.applications[VOICE_ID].replace(
        "<CallbackTimeout>", "<CallInitiatedFallbackCreds>\n            <UserId>login2</UserId>"
        "\n        </CallInitiatedFallbackCreds>\n        <CallbackTimeout>")
    config = str(write_config(tmp_path / "c.toml", line))
    result = await invoke("setup", "--config", config, "--yes")
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0
    assert "has CallInitiatedFallbackCreds, whose password Bandwidth does not" in result.output
    assert line.fake.application_updates == []


async def test_setup_will_not_write_a_public_url_that_was_never_set(fake: FakeBandwidth,
                                                                   ) -> None:
    applications(fake, OLD)
    env = {"BW_ACCOUNT_ID": ACCOUNT_ID, "BW_USERNAME": USERNAME, "BW_PASSWORD": PASSWORD,
           "BW_NUMBER": "+12015550100", "USER_PHONE_NUMBER": "+12015550101",
           "CONFCALL_BANDWIDTH_ACCOUNT_API_URL": fake.urls()["bandwidth.account_api_url"]}
    result = await invoke("setup", "--generate-credentials", "--yes", env=env)
    assert result.exit_code == 1
    assert result.output.startswith("error: server.public_url is not set, so the callback URLs "
                                    "would start http://127.0.0.1:8080")
    assert fake.application_updates == [] and fake.requests == 0

    # set, even to the address serve listens on, it is used (with a warning for loopback)
    env |= {"CONFCALL_SERVER_PORT": "22999", "CONFCALL_SERVER_PUBLIC_URL": "http://127.0.0.1:22999",
            "CONFCALL_SERVER_CALLBACK_USERNAME": "u", "CONFCALL_SERVER_CALLBACK_PASSWORD": "p"}
    shown = await invoke("setup", "--messaging-app", MESSAGING_ID, "--voice-app", VOICE_ID,
                         "--dry-run", env=env)
    assert shown.exit_code == 0, shown.output
    assert ("warning: http://127.0.0.1:22999 is on this machine only: Bandwidth cannot reach it"
            in " ".join(shown.output.split()))
    assert "→ http://127.0.0.1:22999/callbacks/messaging" in shown.output


def test_setup_in_sandbox_mode_says_there_is_nothing_to_set_up() -> None:
    result = runner.invoke(app, ["setup", "--yes"])
    assert result.exit_code == 1
    assert result.output.startswith("error: sandbox mode: no Bandwidth account is configured")


# --- the README's set-up steps, followed word for word -----------------------------------


def readme_environment(fake: FakeBandwidth, public_url: str) -> dict[str, str]:
    """What notes/readme-setup.md has the operator export (the fake's URLs added)."""
    urls = fake.urls()
    return {
        "BW_ACCOUNT_ID": ACCOUNT_ID, "BW_USERNAME": USERNAME, "BW_PASSWORD": PASSWORD,
        "BW_NUMBER": "+12015550100", "USER_PHONE_NUMBER": "+12015550101",
        "CONFCALL_SERVER_PUBLIC_URL": public_url,
        "CONFCALL_BANDWIDTH_ACCOUNT_API_URL": urls["bandwidth.account_api_url"],
        "CONFCALL_BANDWIDTH_MESSAGING_API_URL": urls["bandwidth.messaging_api_url"],
        "CONFCALL_BANDWIDTH_VOICE_API_URL": urls["bandwidth.voice_api_url"],
    }


async def test_following_the_readme_makes_check_pass(fake: FakeBandwidth,
                                                     tmp_path: Path) -> None:
    applications(fake, "https://dashboard-default.example.com", creds=False)
    served = Served(tmp_path, fake, ["+12015550101"])  # `confcall serve`, run in tmp_path
    env = readme_environment(fake, served.url)

    listed = await invoke("setup", env=env)
    assert listed.exit_code == 1 and MESSAGING_ID in listed.output and VOICE_ID in listed.output

    done = await invoke("setup", "--messaging-app", MESSAGING_ID, "--voice-app", VOICE_ID,
                        "--generate-credentials", "--yes", env=env)
    assert done.exit_code == 0, done.output
    assert "`confcall check` passes once `confcall serve` answers" in " ".join(done.output.split())

    served.env["CONFCALL_SERVER_PUBLIC_URL"] = served.url
    await served.start()
    try:
        checked = await invoke("check", "--json", env=env)
        report = json.loads(checked.output)
        assert checked.exit_code == 0, report
        names = [c["name"] for c in report["checks"]]
        assert names[:4] == ["config", "credentials", "messaging application",
                             "messaging inbound URL"]
        assert {c["status"] for c in report["checks"]} == {"ok"}
        # serve took the credentials setup saved: a callback without them is refused
        async with aiohttp.ClientSession() as session, session.post(
                f"{served.url}/callbacks/messaging", json=[]) as answer:
            assert answer.status == 401
        text = await invoke("simulate-text", "--url", served.url, "--from", "+12015550101",
                            "hello", env=env)
        assert text.exit_code == 0, text.output
    finally:
        await served.stop()


async def test_check_takes_the_public_url_as_an_option(start_line: StartLine,
                                                       tmp_path: Path) -> None:
    line = await line_with_credentials(start_line)
    applications(line.fake, public(line))
    path = write_config(tmp_path / "c.toml", line)
    path.write_text(path.read_text().replace(f'public_url = "{public(line)}"\n', ""))

    without = await invoke("check", "--config", str(path), "--json")
    assert without.exit_code == 1  # the default public URL is http://127.0.0.1:8080
    given = await invoke("check", "--config", str(path), "--public-url", public(line), "--json")
    assert given.exit_code == 0, given.output


async def test_check_shows_the_credentials_row_when_no_application_is_found(
    line: Line, tmp_path: Path,
) -> None:
    applications(line.fake, OLD)
    config = str(without_ids(write_config(tmp_path / "c.toml", line)))
    checked = await invoke("check", "--config", config, "--json")
    rows = {c["name"]: c for c in json.loads(checked.output)["checks"]}
    assert checked.exit_code == 1
    assert rows["credentials"]["status"] == "ok"
    assert rows["messaging application"]["fix"] == (
        "run `confcall setup` (it lists the account's applications), or set "
        "bandwidth.messaging_application_id")
