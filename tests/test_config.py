"""Configuration: file, then environment, then flags; bad values stop start-up in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from confcall.config import ConfigError, load_config

LIVE = {
    "BW_ACCOUNT_ID": "9900000",
    "BW_USERNAME": "api-user",
    "BW_PASSWORD": "pw-secret-value",
    "BW_NUMBER": "(201) 555-0100",
    "USER_PHONE_NUMBER": "201.555.0101",
}


def test_defaults_are_the_sandbox() -> None:
    config = load_config(None, {})
    assert config.sandbox
    assert config.bandwidth.phone_number == "+12015550100"
    assert config.organizers == ("+12015550101",)
    assert (config.server.host, config.server.port) == ("127.0.0.1", 8080)
    assert config.server.public_url == "http://127.0.0.1:8080"
    assert config.bandwidth.messaging_api_url == "http://127.0.0.1:8080/sandbox/messaging/api/v2"
    assert config.max_invites == 10
    assert config.server.callback_auth is None


def test_seed_and_sdk_environment_names_give_live_mode() -> None:
    config = load_config(None, LIVE)
    assert not config.sandbox
    assert config.bandwidth.account_id == "9900000"
    assert config.bandwidth.phone_number == "+12015550100"
    assert config.organizers == ("+12015550101",)
    assert config.bandwidth.messaging_api_url == "https://messaging.bandwidth.com/api/v2"
    seed = load_config(None, {"BANDWIDTH_USER_ID": "1", "BANDWIDTH_API_TOKEN": "t",
                              "BANDWIDTH_API_SECRET": "s", "BANDWIDTH_PHONE_NUMBER": "2015550100",
                              "USER_PHONE_NUMBER": "+12015550101"})
    assert (seed.bandwidth.account_id, seed.bandwidth.username) == ("1", "t")


def test_confcall_names_win_over_aliases_and_lists_split_on_commas() -> None:
    config = load_config(None, {**LIVE, "CONFCALL_BANDWIDTH_ACCOUNT_ID": "42",
                                "CONFCALL_ORGANIZERS_NUMBERS": "+12015550101, 2015550102"})
    assert config.bandwidth.account_id == "42"
    assert config.organizers == ("+12015550101", "+12015550102")


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[conference]\nmax_invites = 5\n')
    config = load_config(path, {"CONFCALL_SERVER_PORT": "9100"}, {"server.host": "::1"})
    assert config.server.port == 9100
    assert config.server.host == "::1"
    assert config.max_invites == 5
    assert config.server.public_url == "http://[::1]:9100"
    assert load_config(path, {}).server.public_url == "http://127.0.0.1:9000"


def test_default_file_is_read_when_present(tmp_path: Path) -> None:
    (tmp_path / "confcall.toml").write_text("[server]\nport = 9999\n")
    assert load_config(None, {}).server.port == 9999


@pytest.mark.parametrize(("toml", "message"), [
    ("[server]\nport = \"eighty\"\n", "server.port: 'eighty' is not a whole number"),
    ("[server]\nport = 70000\n", "server.port: must be at most 65535"),
    ("[server]\nportt = 1\n", "unknown key `server.portt`"),
    ("[nonsense]\nx = 1\n", "unknown key `nonsense.x`"),
    ("port = 1\n", "`port` must be a [section]"),
    ("[organizers]\nnumbers = [\"+1 555 555 0100\"]\n", "organizers.numbers: '+1 555 555 0100'"),
    ("[bandwidth]\nphone_number = \"hello\"\n", "bandwidth.phone_number: 'hello' is not"),
    ("[conference]\nmax_invites = 0\n", "conference.max_invites: must be at least 1"),
    ("[conference]\ndefault_region = \"XX\"\n", "conference.default_region"),
    ("[server]\npublic_url = \"ftp://x\"\n", "server.public_url"),
    ("[log]\nmask_numbers = \"perhaps\"\n", "log.mask_numbers"),
    ("[server]\ncallback_username = \"only-half\"\n", "go together"),
    ("[server\n", "not valid TOML"),
])
def test_bad_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(None, {"CONFCALL_SERVER_PORT": "http"})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", {})


def test_partial_live_credentials_name_what_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"BW_ACCOUNT_ID": "9900000", "BW_PASSWORD": "pw-secret-value"})
    message = str(caught.value)
    assert "bandwidth.username" in message
    assert "bandwidth.phone_number" in message
    assert "organizers.numbers" in message
    assert "bandwidth.account_id (" not in message
    assert "pw-secret-value" not in message


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[bandwidth]\npassword = "hunter2-secret"\n[server]\nport = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert "hunter2-secret" not in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        load_config(None, {"BW_PASSWORD": "hunter2-secret", "CONFCALL_SERVER_CALLBACK_PASSWORD":
                           "cb-secret"})
    assert "hunter2-secret" not in str(caught.value)
    assert "cb-secret" not in str(caught.value)
