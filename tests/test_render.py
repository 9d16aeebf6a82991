"""What the command line draws: the banner's warnings and hint, and untrusted text made safe
for a terminal."""

from __future__ import annotations

import io
import shlex
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from confcall.config import load_config
from confcall.render import banner, try_command, visible

LIVE = {"BW_ACCOUNT_ID": "9900000", "BW_USERNAME": "api-user-7f2c",
        "BW_PASSWORD": "api-secret-91d4e6", "BW_NUMBER": "+12015550100",
        "USER_PHONE_NUMBER": "+12015550101"}


def drawn(renderable: Any) -> str:
    """What a person sees, with line breaks folded to spaces."""
    out = io.StringIO()
    Console(file=out, width=80, color_system=None).print(renderable, crop=False)
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_live_on_a_loopback_callback_url_warns(host: str) -> None:
    config = load_config(None, LIVE, {"server.host": host})
    shown = drawn(banner(config))
    assert "http://127.0.0.1:8080/callbacks/messaging" in shown
    assert ("warning: the callback URLs point at 127.0.0.1, which Bandwidth cannot reach: set "
            "server.public_url") in shown


@pytest.mark.parametrize(("environ", "overrides"), [
    (LIVE, {"server.host": "0.0.0.0", "server.public_url": "https://line.confcall.test"}),
    ({}, {"server.host": "0.0.0.0"}),  # the sandbox: its fake Bandwidth is on this machine
])
def test_no_warning_when_bandwidth_can_reach_it(environ: dict[str, str],
                                                overrides: dict[str, Any]) -> None:
    assert "cannot reach" not in drawn(banner(load_config(None, environ, overrides)))


@pytest.mark.parametrize(("overrides", "url"), [
    ({}, None),
    ({"server.host": "0.0.0.0"}, None),  # a client reaches 0.0.0.0 at 127.0.0.1 anyway
    ({"server.port": 9000}, "http://127.0.0.1:9000"),
    ({"server.host": "::1"}, "http://[::1]:8080"),
])
def test_the_command_to_try_names_the_server_when_it_is_not_the_default(
        overrides: dict[str, Any], url: str | None) -> None:
    command = try_command(load_config(None, {}, overrides))
    words = shlex.split(command)
    if url is None:
        assert "--url" not in words
    else:
        assert words[words.index("--url") + 1] == url
    assert command in drawn(banner(load_config(None, {}, overrides)))


def test_the_command_to_try_names_a_config_file_given(tmp_path: Path) -> None:
    path = tmp_path / "line.toml"
    path.write_text("[server]\nport = 8080\n")
    assert f"--config {path} " in try_command(load_config(path, {}))
    (tmp_path / "confcall.toml").write_text("")  # the default file: found without naming it
    assert "--config" not in try_command(load_config(None, {}))


@pytest.mark.parametrize(("raw", "shown"), [
    ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
    ("a\nb\rc\td\x00", "a\\x0ab\\x0dc\\x09d\\x00"),
    ("\x7f\x80\x9b\x9f", "\\x7f\\x80\\x9b\\x9f"),
    ("\u202aa\u202b\u202c\u202d\u202e", "\\u202aa\\u202b\\u202c\\u202d\\u202e"),
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
    ("Zoë’s café ☎ +1 (201) 555-0123 日本", "Zoë’s café ☎ +1 (201) 555-0123 日本"),
])
def test_visible_escapes_every_control_and_nothing_else(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_visible_can_keep_line_breaks() -> None:
    assert visible("<a>\n\x1b</a>", keep_newlines=True) == "<a>\n\\x1b</a>"
