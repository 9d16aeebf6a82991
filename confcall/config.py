"""Configuration: a TOML file, then environment variables, then command-line flags."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confcall.errors import BadNumbers, ConfigError

DEFAULT_CONFIG_FILE = Path("confcall.toml")
SANDBOX_PHONE_NUMBER = "+12015550100"
SANDBOX_ORGANIZER = "+12015550101"
BANDWIDTH_MESSAGING_URL = "https://messaging.bandwidth.com/api/v2"
BANDWIDTH_VOICE_URL = "https://voice.bandwidth.com/api/v2"
BANDWIDTH_ACCOUNT_URL = "https://dashboard.bandwidth.com/api"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class Key:
    """One configuration key: where it may come from and how to read it."""

    name: str
    kind: str  # "str", "secret", "int", "bool", "choice", "phone", "phones", "region", "url"
    env: tuple[str, ...] = ()
    default: Any = None
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None

    @property
    def env_names(self) -> tuple[str, ...]:
        return ("CONFCALL_" + self.name.replace(".", "_").upper(), *self.env)


KEYS: tuple[Key, ...] = (
    Key("bandwidth.account_id", "str", ("BANDWIDTH_USER_ID", "BW_ACCOUNT_ID"),
        help="Bandwidth account id"),
    Key("bandwidth.username", "secret", ("BANDWIDTH_API_TOKEN", "BW_USERNAME"),
        help="API username"),
    Key("bandwidth.password", "secret", ("BANDWIDTH_API_SECRET", "BW_PASSWORD"),
        help="API password"),
    Key("bandwidth.phone_number", "phone", ("BANDWIDTH_PHONE_NUMBER", "BW_NUMBER"),
        help="the Bandwidth number people text and call"),
    Key("bandwidth.messaging_application_id", "str", ("BW_MESSAGING_APPLICATION_ID",),
        help="Messaging-V2 application; unset: taken from each inbound text"),
    Key("bandwidth.voice_application_id", "str", ("BW_VOICE_APPLICATION_ID",),
        help="Voice-V2 application (read by `confcall check`)"),
    Key("bandwidth.messaging_api_url", "url", (), BANDWIDTH_MESSAGING_URL),
    Key("bandwidth.voice_api_url", "url", (), BANDWIDTH_VOICE_URL),
    Key("bandwidth.account_api_url", "url", (), BANDWIDTH_ACCOUNT_URL),
    Key("organizers.numbers", "phones", ("USER_PHONE_NUMBER",), (),
        help="who may start and end conferences"),
    Key("server.host", "str", (), "127.0.0.1"),
    Key("server.port", "int", (), 8080, minimum=0, maximum=65535),
    Key("server.public_url", "url", (), None, help="default http://HOST:PORT"),
    Key("server.callback_username", "secret"),
    Key("server.callback_password", "secret"),
    Key("store.path", "str", (), "confcall.db"),
    Key("store.retain_days", "int", (), 30, minimum=1),
    Key("store.synchronous", "choice", (), "normal", help="normal or full"),
    Key("conference.max_invites", "int", (), 10, minimum=1, maximum=19),
    Key("conference.default_region", "region", (), "US"),
    Key("outbox.concurrency", "int", (), 10, minimum=1, maximum=100),
    Key("outbox.max_retry_delay", "int", (), 300, minimum=1),
    Key("outbox.request_timeout", "int", (), 10, minimum=1, maximum=120),
    Key("log.mask_numbers", "bool", (), True),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}


@dataclass(frozen=True)
class BandwidthConfig:
    account_id: str
    username: str
    password: str
    phone_number: str
    messaging_application_id: str | None
    voice_application_id: str | None
    messaging_api_url: str
    voice_api_url: str
    account_api_url: str


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    public_url: str
    callback_username: str | None
    callback_password: str | None

    @property
    def callback_auth(self) -> tuple[str, str] | None:
        if self.callback_username and self.callback_password:
            return (self.callback_username, self.callback_password)
        return None

    @property
    def local_url(self) -> str:
        """Where a process on this machine reaches the server."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True)
class Config:
    bandwidth: BandwidthConfig
    server: ServerConfig
    organizers: tuple[str, ...]
    store_path: Path
    retain_days: int
    synchronous: str
    max_invites: int
    default_region: str
    outbox_concurrency: int
    max_retry_delay: float
    request_timeout: float
    mask_numbers: bool
    sandbox: bool
    source: Path | None = field(default=None, compare=False)

    def callback_url(self, route: str) -> str:
        return self.server.public_url.rstrip("/") + route


def _read_file(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    flat: dict[str, Any] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: `{section}` must be a [section], not a value")
        for name, value in table.items():
            dotted = f"{section}.{name}"
            if dotted not in KEYS_BY_NAME:
                raise ConfigError(f"{path}: unknown key `{dotted}`")
            flat[dotted] = value
    return flat


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key in KEYS:
        for env_name in key.env_names:
            value = environ.get(env_name)
            if value is not None and value.strip() != "":
                flat[key.name] = value
                break
    return flat


def _coerce(key: Key, value: Any, region: str) -> Any:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{key.name}: {problem}")

    if key.kind in ("str", "secret", "url"):
        if not isinstance(value, str):
            raise fail("must be a string")
        value = value.strip()
        if key.kind == "url" and not value.startswith(("http://", "https://")):
            raise fail(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if key.kind == "url" else value
    if key.kind == "int":
        if isinstance(value, bool):
            raise fail("must be a whole number")
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise fail(f"{value!r} is not a whole number") from None
        if key.minimum is not None and number < key.minimum:
            raise fail(f"must be at least {key.minimum}")
        if key.maximum is not None and number > key.maximum:
            raise fail(f"must be at most {key.maximum}")
        return number
    if key.kind == "choice":
        text = str(value).strip().lower()
        if text not in ("normal", "full"):
            raise fail(f"{value!r} is not normal or full")
        return text
    if key.kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise fail(f"{value!r} is not true or false")
    if key.kind == "region":
        import phonenumbers

        text = str(value).strip().upper()
        if text not in phonenumbers.SUPPORTED_REGIONS:
            raise fail(f"{value!r} is not a region code such as US or GB")
        return text
    if key.kind in ("phone", "phones"):
        from confcall.phone import normalise  # phonenumbers is slow to import: only if needed
    if key.kind == "phone":
        if not isinstance(value, str):
            raise fail("must be a phone number in a string")
        try:
            return normalise(value, region)
        except BadNumbers as exc:
            raise fail(str(exc)) from None
    if key.kind == "phones":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise fail("must be a list of phone numbers")
        numbers: list[str] = []
        for item in items:
            if not isinstance(item, str):
                raise fail("must be a list of phone numbers")
            if not item.strip():
                continue
            try:
                e164 = normalise(item, region)
            except BadNumbers as exc:
                raise fail(str(exc)) from None
            if e164 not in numbers:
                numbers.append(e164)
        return tuple(numbers)
    raise AssertionError(key.kind)  # pragma: no cover


def given_keys(path: Path | None = None, environ: Mapping[str, str] | None = None) -> set[str]:
    """The keys the config file (`path`, or ./confcall.toml when present) and `environ` set,
    as opposed to those left to their defaults."""
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    keys = set(_read_file(path)) if path is not None else set()
    return keys | set(_from_environ(environ if environ is not None else {}))


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the configuration: `path` (or ./confcall.toml when present), then `environ`,
    then `overrides` (dotted key -> value, e.g. from command-line flags); later wins."""
    raw: dict[str, Any] = {}
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        raw.update(_read_file(path))
    raw.update(_from_environ(environ if environ is not None else {}))
    for name, value in (overrides or {}).items():
        if name not in KEYS_BY_NAME:
            raise ConfigError(f"unknown key `{name}`")
        if value is not None:
            raw[name] = value

    region_key = KEYS_BY_NAME["conference.default_region"]
    region = (_coerce(region_key, raw[region_key.name], "US") if region_key.name in raw
              else region_key.default)
    values: dict[str, Any] = {}
    for key in KEYS:
        values[key.name] = _coerce(key, raw[key.name], region) if key.name in raw else key.default

    credentials = ("bandwidth.account_id", "bandwidth.username", "bandwidth.password")
    sandbox = not any(values[name] for name in credentials)
    host, port = values["server.host"], values["server.port"]
    if sandbox:
        values["bandwidth.account_id"] = "sandbox"
        values["bandwidth.username"] = values["bandwidth.password"] = "sandbox"
        values["bandwidth.phone_number"] = values["bandwidth.phone_number"] or SANDBOX_PHONE_NUMBER
        values["organizers.numbers"] = values["organizers.numbers"] or (SANDBOX_ORGANIZER,)
        values["bandwidth.messaging_application_id"] = (
            values["bandwidth.messaging_application_id"] or "sandbox-messaging"
        )
        values["bandwidth.voice_application_id"] = (
            values["bandwidth.voice_application_id"] or "sandbox-voice"
        )
    else:
        needed = (*credentials, "bandwidth.phone_number", "organizers.numbers")
        missing = [name for name in needed if not values[name]]
        if missing:
            listed = ", ".join(f"{name} ({KEYS_BY_NAME[name].env_names[0]})" for name in missing)
            raise ConfigError(
                f"live mode needs {listed}; set all of the Bandwidth credentials, "
                "or none of them to run the sandbox"
            )

    server = ServerConfig(
        host=host,
        port=port,
        public_url="",
        callback_username=values["server.callback_username"],
        callback_password=values["server.callback_password"],
    )
    if bool(server.callback_username) != bool(server.callback_password):
        raise ConfigError(
            "server.callback_username and server.callback_password go together: set both or neither"
        )
    public_url = values["server.public_url"] or server.local_url
    server = ServerConfig(host, port, public_url, server.callback_username,
                          server.callback_password)
    if sandbox:
        base = f"{server.local_url}/sandbox"
        values["bandwidth.messaging_api_url"] = f"{base}/messaging/api/v2"
        values["bandwidth.voice_api_url"] = f"{base}/voice/api/v2"
        values["bandwidth.account_api_url"] = f"{base}/account/api"

    bandwidth = BandwidthConfig(
        **{name.split(".", 1)[1]: values[name] for name in KEYS_BY_NAME
           if name.startswith("bandwidth.")}
    )
    return Config(
        bandwidth=bandwidth,
        server=server,
        organizers=values["organizers.numbers"],
        store_path=Path(values["store.path"]),
        retain_days=values["store.retain_days"],
        synchronous=values["store.synchronous"],
        max_invites=values["conference.max_invites"],
        default_region=region,
        outbox_concurrency=values["outbox.concurrency"],
        max_retry_delay=float(values["outbox.max_retry_delay"]),
        request_timeout=float(values["outbox.request_timeout"]),
        mask_numbers=values["log.mask_numbers"],
        sandbox=sandbox,
        source=path,
    )

