"""Configuration: file, then environment, then flags; bad values stop start-up in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from confcall.config import EXAMPLE_VALUES, ConfigError, load_config

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


@pytest.mark.parametrize(("environ", "message"), [
    ({"CONFCALL_SERVER_PORT": "http"}, "CONFCALL_SERVER_PORT: 'http' is not a whole number"),
    ({"BW_NUMBER": "hello"}, "BW_NUMBER: 'hello' is not a phone number"),
    ({"USER_PHONE_NUMBER": "x"}, "USER_PHONE_NUMBER: 'x' is not a phone number"),
    ({"CONFCALL_LOG_MASK_NUMBERS": "perhaps"}, "CONFCALL_LOG_MASK_NUMBERS: 'perhaps' is not"),
])
def test_bad_environment_value_names_the_variable(environ: dict[str, str],
                                                  message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)
    assert str(caught.value).startswith(message)


def test_a_bad_file_value_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 'x'\n")
    with pytest.raises(ConfigError, match=r"^.*c\.toml: server\.port: 'x' is not"):
        load_config(path, {})


@pytest.mark.parametrize(("environ", "message"), [
    ({"CONFCALL_SERVER_PROT": "9000"},
     "unknown environment variable CONFCALL_SERVER_PROT (did you mean CONFCALL_SERVER_PORT?)"),
    ({"CONFCALL_STORE_PATHS": "x.db", "CONFCALL_ZZZ": "1"},
     "unknown environment variables CONFCALL_STORE_PATHS (did you mean CONFCALL_STORE_PATH?), "
     "CONFCALL_ZZZ"),
])
def test_unknown_confcall_variables_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)
    assert str(caught.value) == message
    # other programs' variables are none of confcall's business
    assert load_config(None, {"BW_SOMETHING_ELSE": "1", "BANDWIDTH_X": "2"}).sandbox


@pytest.mark.parametrize(("toml", "message"), [
    ("[server]\nprot = 1\n", "unknown key `server.prot` (did you mean `server.port`?)"),
    ("[sever]\nport = 1\n", "unknown key `sever.port` (did you mean `server.port`?)"),
    ("[nonsense]\nx = 1\n", "unknown key `nonsense.x`"),
])
def test_unknown_keys_suggest_the_nearest(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert str(caught.value) == f"{path}: {message}"


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


@pytest.mark.parametrize(("environ", "named", "not_named"), [
    ({"BW_ACCOUNT_ID": "9900000", "BW_USERNAME": "api-user"},
     ["BW_PASSWORD (bandwidth.password)", "BW_NUMBER (bandwidth.phone_number)",
      "USER_PHONE_NUMBER (organizers.numbers)"], ["CONFCALL_", "BANDWIDTH_"]),
    ({"BANDWIDTH_USER_ID": "9900000", "BANDWIDTH_PHONE_NUMBER": "2015550100"},
     ["BANDWIDTH_API_TOKEN (bandwidth.username)", "BANDWIDTH_API_SECRET (bandwidth.password)",
      "USER_PHONE_NUMBER (organizers.numbers)"], ["CONFCALL_", "BW_"]),
    ({"CONFCALL_BANDWIDTH_ACCOUNT_ID": "9900000", "BW_USERNAME": "u",
      "CONFCALL_BANDWIDTH_PASSWORD": "p"},
     ["CONFCALL_BANDWIDTH_PHONE_NUMBER (bandwidth.phone_number)",
      "CONFCALL_ORGANIZERS_NUMBERS (organizers.numbers)"], ["BW_NUMBER", "USER_PHONE"]),
])
def test_what_is_missing_is_named_as_the_person_names_the_rest(
        environ: dict[str, str], named: list[str], not_named: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)
    message = str(caught.value)
    for name in named:
        assert name in message
    needs = message.split(" needs ", 1)[1]
    for name in not_named:
        assert name not in needs


def test_a_partial_live_config_loads_for_what_only_reads_the_database() -> None:
    partial = {"BW_ACCOUNT_ID": "9900000", "BW_USERNAME": "api-user",
               "CONFCALL_STORE_PATH": "kept.db"}
    config = load_config(None, partial, need_live=False)
    assert config.store_path == Path("kept.db")
    assert not config.sandbox
    with pytest.raises(ConfigError, match="BW_PASSWORD"):
        load_config(None, partial)
    # other mistakes are still mistakes
    with pytest.raises(ConfigError, match="CONFCALL_SERVER_PORT"):
        load_config(None, {**partial, "CONFCALL_SERVER_PORT": "x"}, need_live=False)


@pytest.mark.parametrize("key", sorted(EXAMPLE_VALUES))
def test_live_mode_refuses_each_placeholder_by_name(key: str) -> None:
    overrides = {key: EXAMPLE_VALUES[key]}
    if key == "server.callback_password":
        overrides["server.callback_username"] = "confcall"
    config = load_config(None, LIVE, overrides)  # loading alone does not refuse
    assert not config.sandbox
    with pytest.raises(ConfigError) as caught:
        load_config(None, LIVE, overrides, refuse_placeholders=True)
    message = str(caught.value)
    assert f"placeholder values: {key} still" in message
    assert "\n" not in message


@pytest.mark.parametrize("url", ["https://confcall.example.com", "http://example.org:8080",
                                 "https://a.b.example.net/"])
def test_live_mode_refuses_a_public_url_on_a_documentation_domain(url: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.public_url"):
        load_config(None, LIVE, {"server.public_url": url}, refuse_placeholders=True)
    fine = load_config(None, LIVE, {"server.public_url": "https://line.notexample.com"},
                       refuse_placeholders=True)
    assert fine.server.public_url == "https://line.notexample.com"


def test_a_placeholder_from_the_environment_is_named_by_its_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, {**LIVE, "BW_PASSWORD": "change-me"}, refuse_placeholders=True)
    assert "placeholder values: BW_PASSWORD still" in str(caught.value)


def test_the_sandbox_is_not_refused_for_placeholders() -> None:
    config = load_config(None, {}, {"server.public_url": "https://confcall.example.com"},
                         refuse_placeholders=True)
    assert config.sandbox


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
