"""The README, the example config and CI stay in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from confcall.config import KEYS, load_config

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


def test_example_config_documents_every_key_and_loads(tmp_path: Path) -> None:
    example = ROOT / "config.example.toml"
    text = example.read_text()
    for key in KEYS:
        section, name = key.name.split(".")
        assert f"[{section}]" in text
        assert re.search(rf"^{name} = ", text, re.M), key.name
    config = load_config(example, {})
    assert not config.sandbox
    assert config.server.callback_auth == ("confcall", "a-long-random-string")


def test_readme_table_names_every_key() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in KEYS:
        assert f"`{key.name}`" in readme, key.name
        for env in key.env:
            assert env in readme, env
