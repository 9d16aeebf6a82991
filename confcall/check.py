"""`confcall check`: will this line work? Credentials, the two applications (by id, or found
by their callback URLs) and their callback settings, and whether the public URL reaches
this server."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from confcall.applications import (
    MESSAGING,
    ROLES,
    VOICE,
    Application,
    Role,
    account_error,
    parse_application,
    parse_application_list,
)
from confcall.auth import basic_auth
from confcall.bandwidth import BandwidthClient
from confcall.config import LOOPBACK_HOSTS, Config
from confcall.errors import BandwidthError, BandwidthUnavailable, ConfcallError

__all__ = ["Check", "Found", "find_applications", "parse_application", "passed", "run_checks"]

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn or fail
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _url_check(name: str, app: Application, setting: str, expected: str,
               optional: bool = False) -> Check:
    actual = app.get(setting)
    if actual == expected:
        return Check(name, OK, actual)
    if not actual and optional:
        return Check(name, WARN, f"{setting} is not set: `status` will not show delivery",
                     f"set {setting} to {expected} to get delivery receipts")
    return Check(name, FAIL, f"{setting} is {actual or 'not set'}", f"set it to {expected}")


def _creds_check(name: str, app: Application, settings: tuple[str, ...], config: Config) -> Check:
    user = config.server.callback_username
    present = {s: app.get(s) for s in settings if s in app.settings}
    if user is None:
        return Check(name, OK, "confcall requires no callback credentials")
    missing = [s for s in settings[:1] if not present.get(s)]
    if missing:
        return Check(name, FAIL, f"{missing[0]} is not set, but confcall requires credentials",
                     f"set {missing[0]} to user {user} and the callback password")
    wrong = [s for s, v in present.items() if v and v != user]
    if wrong:
        return Check(name, FAIL, f"{wrong[0]} user is {present[wrong[0]]}, not {user}",
                     f"set {wrong[0]} to user {user} and the callback password")
    return Check(name, OK, f"user {user}")


class CredentialsRejected(ConfcallError):
    """The account API answered 401: nothing on Bandwidth can be read."""


@dataclass(frozen=True)
class Found:
    """The application confcall uses for one role, or why there is none."""

    role: Role
    application: Application | None
    check: Check
    configured: bool  # its id came from the configuration or an option


async def _read(client: BandwidthClient, application_id: str) -> Application | BandwidthError:
    try:
        return parse_application(await client.get_application(application_id))
    except BandwidthError as exc:
        if exc.status == 401:
            raise CredentialsRejected(exc.body) from None
        return exc


def _label(application: Application) -> str:
    return f"{application.id} ({application.name})" if application.name else application.id


async def find_applications(
    client: BandwidthClient, config: Config, ids: dict[str, str | None],
    id_names: dict[str, str] | None = None,
) -> tuple[list[Found], list[Application]]:
    """The two applications, each by its configured id (`ids`, by role name) or else as the
    one application of its type whose callback URL is this server's; and the account's
    list of applications when it was read. `id_names` says where each id came from (default:
    its config key). Raises CredentialsRejected on a 401 and BandwidthUnavailable when the
    account API cannot be reached."""
    named = {role.name: role.key for role in ROLES} | (id_names or {})
    read: dict[str, Application | BandwidthError] = {}
    for role in ROLES:
        application_id = ids.get(role.name)
        if application_id:
            read[role.name] = await _read(client, application_id)
    listing: list[Application] = []
    if len(read) < len(ROLES):
        try:
            listing = parse_application_list(await client.list_applications())
        except BandwidthError as exc:
            if exc.status == 401:
                raise CredentialsRejected(exc.body) from None
            raise

    found = []
    for role in ROLES:
        name = f"{role.name} application"
        application_id = ids.get(role.name) or ""
        outcome = read.get(role.name)
        if isinstance(outcome, BandwidthError):
            if outcome.status in (403, 404):
                check = Check(name, FAIL, f"{application_id} not found on account "
                              f"{client.config.account_id} ({outcome.status})",
                              f"check {named[role.name]}; `confcall setup` lists the "
                              "account's applications")
            else:
                check = Check(name, FAIL, f"{application_id}: {account_error(outcome)}")
            found.append(Found(role, None, check, True))
        elif outcome is not None:
            if outcome.service_type == role.service_type:
                found.append(Found(role, outcome, Check(
                    name, OK, f"{_label(outcome)}, {role.service_type}"), True))
                continue
            other = next(r for r in ROLES if r is not role)
            swapped = read.get(other.name)
            fix = (f"the two ids are swapped: exchange {named[role.name]} and "
                   f"{named[other.name]}" if isinstance(swapped, Application)
                   and swapped.service_type == role.service_type
                   else f"set {named[role.name]} to a {role.service_type} application")
            found.append(Found(role, None, Check(
                name, FAIL, f"{application_id} is a {outcome.service_type or 'untyped'} "
                f"application, not {role.service_type}", fix), True))
        else:
            found.append(_discover(role, config, listing))
    return found, listing


def _discover(role: Role, config: Config, listing: list[Application]) -> Found:
    """The one application of the role's type that already sends to this server."""
    name = f"{role.name} application"
    url = config.callback_url(role.routes[role.url_setting])
    matching = [a for a in listing
                if a.service_type == role.service_type and a.get(role.url_setting) == url]
    if len(matching) == 1:
        return Found(role, matching[0], Check(
            name, OK, f"{_label(matching[0])}, found by its {role.url_setting}"), False)
    if matching:
        listed = ", ".join(a.id for a in matching)
        return Found(role, None, Check(
            name, FAIL, f"several {role.service_type} applications send to {url}: {listed}",
            f"set {role.key} to the one linked to your number's location"), False)
    return Found(role, None, Check(
        name, FAIL, f"no id configured, and no {role.service_type} application sends to {url}",
        f"run `confcall setup` (it lists the account's applications), or set {role.key}"),
        False)


async def _health(session: aiohttp.ClientSession, config: Config) -> Check:
    url = config.callback_url("/healthz")
    auth = config.server.callback_auth  # so that the server says why it is unhealthy
    headers = {"Authorization": basic_auth(*auth)} if auth else None
    try:
        async with session.get(url, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status == 200:
                return Check("public URL", OK, f"{url} answers")
            reason = ""
            with contextlib.suppress(ValueError, aiohttp.ClientError):
                answer = await response.json(content_type=None)
                reason = f": {answer['reason']}" if isinstance(answer, dict) and (
                    "reason" in answer) else ""
            return Check("public URL", FAIL, f"{url} answered {response.status}{reason}",
                         "is server.public_url this server?" if not reason
                         else "see the reason; `confcall status` and the log say more")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Check("public URL", FAIL, f"{url} does not answer ({type(exc).__name__})",
                     "start `confcall serve`, and check server.public_url and the proxy")


async def run_checks(config: Config, session: aiohttp.ClientSession) -> list[Check]:
    """Every check, in the order a person would fix them."""
    checks = [Check("config", OK, f"{config.source or 'defaults and environment'}")]
    if config.sandbox:
        checks.append(Check("mode", WARN, "sandbox: no Bandwidth account configured, so "
                            "there is nothing on Bandwidth to check",
                            "set bandwidth.account_id, username and password for live mode"))
        checks.append(await _health(session, config))
        return checks

    client = BandwidthClient(session, config.bandwidth, config.request_timeout)
    ids = {"messaging": config.bandwidth.messaging_application_id,
           "voice": config.bandwidth.voice_application_id}
    try:
        found, _ = await find_applications(client, config, ids)
    except CredentialsRejected:
        return [*checks, Check("credentials", FAIL, "username/password rejected (401)",
                               "check bandwidth.username and bandwidth.password"),
                await _health(session, config)]
    except BandwidthUnavailable as exc:
        return [*checks, Check("credentials", FAIL, f"cannot reach Bandwidth: {exc}",
                               "check the network and bandwidth.account_api_url"),
                await _health(session, config)]
    except BandwidthError as exc:
        return [*checks, Check("credentials", FAIL, f"listing the account's applications: "
                               f"{account_error(exc)}", "check bandwidth.account_id"),
                await _health(session, config)]
    checks.append(Check("credentials", OK, "accepted by the account API"))

    for item in found:
        checks.append(item.check)
        application = item.application
        if application is None:
            continue
        if item.role is MESSAGING:
            expected = config.callback_url("/callbacks/messaging")
            checks.append(_url_check("messaging inbound URL", application,
                                     "InboundCallbackUrl", expected))
            checks.append(_url_check("messaging status URL", application,
                                     "OutboundCallbackUrl", expected, optional=True))
            checks.append(_creds_check("messaging callback credentials", application,
                                       MESSAGING.credentials, config))
        else:
            checks.append(_url_check("voice initiated URL", application,
                                     "CallInitiatedCallbackUrl",
                                     config.callback_url("/callbacks/voice/initiate")))
            checks.append(_url_check("voice status URL", application, "CallStatusCallbackUrl",
                                     config.callback_url("/callbacks/voice/status")))
            checks.append(_creds_check("voice callback credentials", application,
                                       VOICE.credentials, config))
    if config.server.callback_auth is None:
        host = urlsplit(config.server.public_url).hostname or ""
        if host not in LOOPBACK_HOSTS:
            checks.append(Check(
                "callback credentials", WARN,
                f"{config.server.public_url} is public and callbacks need no credentials",
                "set server.callback_username/password and the same on both applications"))
    checks.append(await _health(session, config))
    return checks


def passed(checks: list[Check]) -> bool:
    return all(check.status != FAIL for check in checks)
