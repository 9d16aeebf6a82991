"""The README, the example config and CI stay in step with the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from confcall.config import EXAMPLE_VALUES, KEYS, ConfigError, load_config

ROOT = Path(__file__).parent.parent


def _readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick_start)


def test_quick_start_is_two_commands_and_ci_runs_the_test_one() -> None:
    serve, test = _readme_commands()[:2]
    assert "confcall serve" in serve
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci


def test_example_config_documents_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    for key in KEYS:
        section, name = key.name.split(".")
        assert f"[{section}]" in text
        # a key with no fixed default (store.url, outbox.lease_seconds) is shown commented
        assert re.search(rf"^(# )?{name} = ", text, re.M), key.name


def test_the_example_config_as_is_is_refused_naming_its_placeholders() -> None:
    example = ROOT / "config.example.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(example, {}, refuse_placeholders=True)
    message = str(caught.value)
    for key in (*EXAMPLE_VALUES, "server.public_url"):
        assert key in message, key
    # with its placeholders replaced it is a working live configuration
    own = {f"CONFCALL_{key.replace('.', '_').upper()}": "mine-0001"
           for key in EXAMPLE_VALUES}
    own["CONFCALL_SERVER_PUBLIC_URL"] = "https://line.confcall.test"
    config = load_config(example, own, refuse_placeholders=True)
    assert not config.sandbox
    assert config.server.callback_auth == ("confcall", "mine-0001")


def test_serve_refuses_the_example_config_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from confcall.cli import app

    result = CliRunner().invoke(app, ["serve", "--config", str(ROOT / "config.example.toml")])
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert "placeholder values" in line and "bandwidth.password" in line


def test_python_versions_agree() -> None:
    """The README's Python is the oldest that pyproject allows, and the one linted for."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    readme = (ROOT / "README.md").read_text()
    [stated] = re.findall(r"Python (3\.\d+)", readme.split("## Quick start", 1)[1][:400])
    assert project["project"]["requires-python"] == f">={stated}"
    assert project["tool"]["ruff"]["target-version"] == "py" + stated.replace(".", "")
    assert project["tool"]["mypy"]["python_version"] == stated
    assert not [d for d in project["project"]["dependencies"] if d.startswith("tomli")]


def test_readme_table_names_every_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in KEYS:
        assert f"`{key.name}`" in readme, key.name
        for env in key.env:
            assert env in readme, env


