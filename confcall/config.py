"""Configuration: a TOML file, then environment variables, then command-line flags."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
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
ENV_PREFIX = "CONFCALL_"


@dataclass(frozen=True)
class Key:
    """One configuration key: where it may come from and how to read it."""

    name: str
    # "str", "secret", "int", "bool", "choice", "phone", "phones", "region", "url", "database"
    kind: str
    env: tuple[str, ...] = ()
    default: Any = None
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()  # the values a "choice" key takes

    @property
    def env_names(self) -> tuple[str, ...]:
        return (ENV_PREFIX + self.name.replace(".", "_").upper(), *self.env)


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
    Key("server.idle_timeout", "int", (), 15, minimum=1, maximum=3600,
        help="seconds a connection may stay idle, or take over its request's headers"),
    Key("server.body_timeout", "int", (), 10, minimum=1, maximum=300,
        help="seconds a request's body may take to arrive"),
    Key("server.max_connections", "int", (), 1000, minimum=10, maximum=100_000,
        help="connections open at once; more are closed as they come"),
    Key("store.path", "str", (), "confcall.db", help="the SQLite database"),
    Key("store.url", "database", (), None,
        help="a PostgreSQL database (postgresql://…), for replicas; unset: store.path"),
    Key("store.retain_days", "int", (), 30, minimum=1),
    Key("store.synchronous", "choice", (), "normal", help="normal or full",
        choices=("normal", "full")),
    Key("conference.max_invites", "int", (), 10, minimum=1, maximum=19),
    Key("conference.default_region", "region", (), "US"),
    Key("conference.end_when_organizer_leaves", "bool", (), False,
        help="end the call when its organizer, who was on it, hangs up"),
    Key("recording.enabled", "bool", (), False,
        help="record every conference; the recap carries a link to the recording"),
    Key("recording.link_days", "int", (), 30, minimum=1, maximum=3650,
        help="days a recording's link works"),
    Key("outbox.concurrency", "int", (), 10, minimum=1, maximum=100),
    Key("outbox.max_retry_delay", "int", (), 300, minimum=1),
    Key("outbox.request_timeout", "int", (), 10, minimum=1, maximum=120),
    Key("outbox.lease_seconds", "int", (), None, minimum=2, maximum=3600,
        help="how long a row being sent is held; default 2 × request_timeout + 30"),
    Key("log.mask_numbers", "bool", (), True),
    Key("log.format", "choice", (), "text", help="text, or json: one JSON object a line",
        choices=("text", "json")),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}
ENV_KEYS = {env: key for key in KEYS for env in key.env_names}
CREDENTIALS = ("bandwidth.account_id", "bandwidth.username", "bandwidth.password")
LIVE_KEYS = (*CREDENTIALS, "bandwidth.phone_number", "organizers.numbers")
# The families of environment names a person may be using: confcall's own, the older
# confcall seed's (BANDWIDTH_…) and the Bandwidth SDK's (BW_…); USER_PHONE_NUMBER serves both
ENV_FAMILIES = (ENV_PREFIX, "BANDWIDTH_", "BW_")

# The values config.example.toml holds for a person to replace: live mode with any of them
# cannot work (Bandwidth refuses the credentials, or cannot reach the callback URLs)
EXAMPLE_VALUES: dict[str, str] = {
    "bandwidth.account_id": "your-account-id",
    "bandwidth.username": "your-api-username",
    "bandwidth.password": "change-me",
    "bandwidth.messaging_application_id": "93de2206-9669-4e07-948d-329f4b722ee2",
    "bandwidth.voice_application_id": "04e88489-df02-4e34-a0ee-27a91849555f",
    "server.callback_password": "a-long-random-string",
}
# Reserved for documentation (RFC 2606): no server of anyone's is ever reached there
EXAMPLE_DOMAINS = ("example.com", "example.net", "example.org")


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
    idle_timeout: float = 15.0
    body_timeout: float = 10.0
    max_connections: int = 1000

    @property
    def callback_auth(self) -> tuple[str, str] | None:
        if self.callback_username and self.callback_password:
            return (self.callback_username, self.callback_password)
        return None

    @property
    def local_url(self) -> str:
        """Where a process on this machine reaches the server."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{_bracketed(host)}:{self.port}"

    @property
    def listen_url(self) -> str:
        """The address it listens on, as a URL (0.0.0.0 for every address)."""
        return f"http://{_bracketed(self.host)}:{self.port}"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


DEFAULT_LOCAL_URL = f"http://127.0.0.1:{KEYS_BY_NAME['server.port'].default}"


@dataclass(frozen=True)
class Config:
    bandwidth: BandwidthConfig
    server: ServerConfig
    organizers: tuple[str, ...]
    store_path: Path
    retain_days: int
    synchronous: str
    max_invites: int
    end_when_organizer_leaves: bool
    recording: bool
    link_days: int
    default_region: str
    outbox_concurrency: int
    max_retry_delay: float
    request_timeout: float
    mask_numbers: bool
    sandbox: bool
    source: Path | None = field(default=None, compare=False)
    log_format: str = "text"
    store_url: str | None = None  # PostgreSQL; None: the SQLite database at store_path
    lease_seconds: float = 50.0  # how long the outbox holds a row it is sending

    @property
    def store_name(self) -> str:
        """The database, as a person would name it in a message: the SQLite file, or the
        PostgreSQL URL without its password."""
        return shown_url(self.store_url) if self.store_url else str(self.store_path)
    def callback_url(self, route: str) -> str:
        return self.server.public_url.rstrip("/") + route


def shown_url(url: str) -> str:
    """A database URL fit to show: its password (in the URL or its query) replaced."""
    import re
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else netloc
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _did_you_mean(name: str, known: Iterable[str], quote: str = "") -> str:
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {quote}{close[0]}{quote}?)" if close else ""


class _Setting:
    """One value as it was given, and how the person named it, for error messages."""

    # a plain class: a dataclass costs a command's start-up more than all of this module
    __slots__ = ("env", "file", "name", "value")

    def __init__(self, value: Any, name: str, *, file: Path | None = None,
                 env: bool = False) -> None:
        self.value = value
        self.name = name  # the key, or the environment variable it came from
        self.file = file
        self.env = env

    @property
    def label(self) -> str:
        return f"{self.file}: {self.name}" if self.file is not None else self.name


def _read_file(path: Path) -> dict[str, _Setting]:
    import tomllib

    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    flat: dict[str, _Setting] = {}
    for section, table in document.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: `{section}` must be a [section], not a value")
        for name, value in table.items():
            dotted = f"{section}.{name}"
            if dotted not in KEYS_BY_NAME:
                hint = _did_you_mean(dotted, KEYS_BY_NAME, "`")
                raise ConfigError(f"{path}: unknown key `{dotted}`{hint}")
            flat[dotted] = _Setting(value, dotted, file=path)
    return flat


def _from_environ(environ: Mapping[str, str]) -> dict[str, _Setting]:
    # A misspelt variable would otherwise be ignored without a word, as a file's is not
    unknown = sorted(name for name in environ if name.startswith(ENV_PREFIX)
                     and name not in ENV_KEYS)
    if unknown:
        # compared without the prefix they all share, which would make any two look alike
        ours = [env.removeprefix(ENV_PREFIX) for env in ENV_KEYS if env.startswith(ENV_PREFIX)]
        listed = ", ".join(name + _did_you_mean(name.removeprefix(ENV_PREFIX), ours).replace(
            "mean ", "mean " + ENV_PREFIX) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise ConfigError(f"unknown environment variable{plural} {listed}")
    flat: dict[str, _Setting] = {}
    for key in KEYS:
        for env_name in key.env_names:
            value = environ.get(env_name)
            if value is not None and value.strip() != "":
                flat[key.name] = _Setting(value, env_name, env=True)
                break
    return flat


def _coerce(key: Key, value: Any, region: str, label: str) -> Any:
    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{label}: {problem}")

    if key.kind in ("str", "secret", "url"):
        if not isinstance(value, str):
            raise fail("must be a string")
        value = value.strip()
        if key.kind == "url" and not value.startswith(("http://", "https://")):
            raise fail(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if key.kind == "url" else value
    if key.kind == "database":
        if not isinstance(value, str):
            raise fail("must be a string")
        value = value.strip()
        if not value.startswith(("postgresql://", "postgres://")):
            raise fail(f"{shown_url(value)!r} is not a postgresql:// URL")
        return value
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
        if text not in key.choices:
            raise fail(f"{value!r} is not {' or '.join(key.choices)}")
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


def _family(raw: Mapping[str, _Setting]) -> str | None:
    """Which names the person gave the live keys by: confcall's own, the seed's or the SDK's
    environment variables (the most used), or None when none came from the environment."""
    counts: dict[str, int] = {}
    for name in LIVE_KEYS:
        setting = raw.get(name)
        if setting is not None and setting.env:
            for prefix in ENV_FAMILIES:
                if setting.name.startswith(prefix):
                    counts[prefix] = counts.get(prefix, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def _named(key: Key, family: str | None) -> str:
    """`key` as a person using `family` (see _family) would set it."""
    if family is None:
        return key.name
    names = [env for env in key.env_names if env.startswith(family)]
    if not names and family != ENV_PREFIX:  # USER_PHONE_NUMBER: the seed's and the SDK's
        names = [env for env in key.env if not env.startswith(ENV_FAMILIES)]
    return f"{(names or list(key.env_names))[0]} ({key.name})"


def _incomplete(missing: list[str], raw: Mapping[str, _Setting]) -> ConfigError:
    family = _family(raw)
    given = ", ".join(raw[name].name for name in CREDENTIALS if name in raw)
    listed = ", ".join(_named(KEYS_BY_NAME[name], family) for name in missing)
    return ConfigError(
        f"live mode ({given} set) needs {listed} too; set all of the Bandwidth credentials, "
        "or none of them to run the sandbox"
    )


def is_example_host(url: str) -> bool:
    """Whether `url` is on a domain reserved for documentation, which nothing can reach."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return any(host == domain or host.endswith("." + domain) for domain in EXAMPLE_DOMAINS)


def _placeholders(values: Mapping[str, Any], raw: Mapping[str, _Setting]) -> ConfigError | None:
    found = [name for name, example in EXAMPLE_VALUES.items() if values[name] == example]
    if values["server.public_url"] and is_example_host(values["server.public_url"]):
        found.append("server.public_url")
    found = [name for name in KEYS_BY_NAME if name in found and name in raw]
    if not found:
        return None
    listed = ", ".join(raw[name].name for name in found)
    files = sorted({str(raw[name].file) for name in found if raw[name].file is not None})
    where = f" (in {', '.join(files)})" if files else ""
    return ConfigError(
        f"live mode cannot work with the example's placeholder values: {listed}{where} still "
        "hold them; put in your own"
    )


def load_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    need_live: bool = True,
    refuse_placeholders: bool = False,
) -> Config:
    """Read the configuration: `path` (or ./confcall.toml when present), then `environ`,
    then `overrides` (dotted key -> value, e.g. from command-line flags); later wins.

    With `need_live` false, a live configuration missing some of its credentials, line or
    organizers still loads (for what only reads the database, which needs none of them).
    With `refuse_placeholders`, live mode with one of config.example.toml's values to
    replace is an error (for what starts talking to Bandwidth)."""
    raw: dict[str, _Setting] = {}
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        raw.update(_read_file(path))
    raw.update(_from_environ(environ if environ is not None else {}))
    for name, value in (overrides or {}).items():
        if name not in KEYS_BY_NAME:
            raise ConfigError(f"unknown key `{name}`")
        if value is not None:
            raw[name] = _Setting(value, name)

    region_key = KEYS_BY_NAME["conference.default_region"]
    given = raw.get(region_key.name)
    region = (_coerce(region_key, given.value, "US", given.label) if given is not None
              else region_key.default)
    values: dict[str, Any] = {}
    for key in KEYS:
        setting = raw.get(key.name)
        values[key.name] = (_coerce(key, setting.value, region, setting.label)
                            if setting is not None else key.default)

    sandbox = not any(values[name] for name in CREDENTIALS)
    host, port = values["server.host"], values["server.port"]
    if sandbox:
        values["bandwidth.account_id"] = "sandbox"
        values["bandwidth.username"] = "sandbox"
        # the sandbox's fake API checks it, as Bandwidth would: a stranger who reaches the
        # server cannot use it to send texts in the operator's name: 144 random bits (from
        # os.urandom, as the secrets module draws them; it costs every command 4 ms to load)
        values["bandwidth.password"] = os.urandom(18).hex()
        values["bandwidth.phone_number"] = values["bandwidth.phone_number"] or SANDBOX_PHONE_NUMBER
        values["organizers.numbers"] = values["organizers.numbers"] or (SANDBOX_ORGANIZER,)
        values["bandwidth.messaging_application_id"] = (
            values["bandwidth.messaging_application_id"] or "sandbox-messaging"
        )
        values["bandwidth.voice_application_id"] = (
            values["bandwidth.voice_application_id"] or "sandbox-voice"
        )
    else:
        missing = [name for name in LIVE_KEYS if not values[name]]
        if missing and need_live:
            raise _incomplete(missing, raw)
        for name in missing:
            values[name] = () if name == "organizers.numbers" else ""
        if refuse_placeholders and (found := _placeholders(values, raw)) is not None:
            raise found

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
                          server.callback_password,
                          idle_timeout=float(values["server.idle_timeout"]),
                          body_timeout=float(values["server.body_timeout"]),
                          max_connections=values["server.max_connections"])
    if sandbox:
        base = f"{server.local_url}/sandbox"
        values["bandwidth.messaging_api_url"] = f"{base}/messaging/api/v2"
        values["bandwidth.voice_api_url"] = f"{base}/voice/api/v2"
        values["bandwidth.account_api_url"] = f"{base}/account/api"

    bandwidth = BandwidthConfig(
        **{name.split(".", 1)[1]: values[name] for name in KEYS_BY_NAME
           if name.startswith("bandwidth.")}
    )
    if "store.url" in raw and "store.path" in raw:
        raise ConfigError(f"{raw['store.path'].label} and {raw['store.url'].label}: set one "
                          "(store.path for SQLite, store.url for PostgreSQL), not both")
    request_timeout = float(values["outbox.request_timeout"])
    lease = values["outbox.lease_seconds"]
    if lease is not None and lease <= request_timeout:
        raise ConfigError(f"{raw['outbox.lease_seconds'].label}: must be longer than "
                          f"outbox.request_timeout ({request_timeout:.0f} s), or a row would "
                          "be taken over while it is being sent")
    return Config(
        bandwidth=bandwidth,
        server=server,
        organizers=values["organizers.numbers"],
        store_path=Path(values["store.path"]),
        retain_days=values["store.retain_days"],
        synchronous=values["store.synchronous"],
        max_invites=values["conference.max_invites"],
        end_when_organizer_leaves=values["conference.end_when_organizer_leaves"],
        recording=values["recording.enabled"],
        link_days=values["recording.link_days"],
        default_region=region,
        outbox_concurrency=values["outbox.concurrency"],
        max_retry_delay=float(values["outbox.max_retry_delay"]),
        request_timeout=request_timeout,
        lease_seconds=float(lease) if lease is not None else 2 * request_timeout + 30,
        store_url=values["store.url"],
        mask_numbers=values["log.mask_numbers"],
        log_format=values["log.format"],
        sandbox=sandbox,
        source=path,
    )
