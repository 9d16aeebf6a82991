"""`confcall check`: will this line work? Credentials, the applications' callback settings,
and whether the public URL reaches this server."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from confcall.bandwidth import BandwidthClient
from confcall.config import LOOPBACK_HOSTS, Config
from confcall.errors import BandwidthError, BandwidthUnavailable

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok, warn or fail
    detail: str
    fix: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Application:
    """What the account API says of one application."""

    service_type: str
    settings: dict[str, str]

    def get(self, name: str) -> str:
        return self.settings.get(name, "")


def parse_application(document: str) -> Application:
    """The account API's ApplicationProvisioningResponse, read with a hardened parser."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(document)
    except (ParseError, DefusedXmlException) as exc:
        raise BandwidthError(
            200, f"the account API answered with XML we cannot read: {exc}") from None
    application = root.find("Application")
    if application is None:
        raise BandwidthError(200, "the account API's answer has no <Application>")
    settings = {}
    for child in application:
        if len(child):  # e.g. <CallbackCreds><UserId>…</UserId></CallbackCreds>
            settings[child.tag] = (child.findtext("UserId") or "").strip()
        else:
            settings[child.tag] = (child.text or "").strip()
    return Application(settings.get("ServiceType", ""), settings)


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


async def _application(client: BandwidthClient, application_id: str | None,
                       label: str, key: str) -> tuple[Application | None, Check | None]:
    if not application_id:
        return None, Check(f"{label} application", FAIL, "no application id configured",
                           f"set {key}")
    try:
        return parse_application(await client.get_application(application_id)), None
    except BandwidthError as exc:
        if exc.status == 401:
            return None, Check("credentials", FAIL, "username/password rejected (401)",
                               "check bandwidth.username and bandwidth.password")
        if exc.status in (403, 404):
            return None, Check(f"{label} application", FAIL,
                               f"{application_id} not found on account "
                               f"{client.config.account_id} ({exc.status})", f"check {key}")
        return None, Check(f"{label} application", FAIL, str(exc))
    except BandwidthUnavailable as exc:
        return None, Check("credentials", FAIL, f"cannot reach Bandwidth: {exc}",
                           "check the network and bandwidth.account_api_url")


async def _health(session: aiohttp.ClientSession, config: Config) -> Check:
    url = config.callback_url("/healthz")
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            if response.status == 200:
                return Check("public URL", OK, f"{url} answers")
            return Check("public URL", FAIL, f"{url} answered {response.status}",
                         "is server.public_url this server?")
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
    messaging, messaging_problem = await _application(
        client, config.bandwidth.messaging_application_id, "messaging",
        "bandwidth.messaging_application_id")
    voice, voice_problem = await _application(
        client, config.bandwidth.voice_application_id, "voice",
        "bandwidth.voice_application_id")
    problems = [p for p in (messaging_problem, voice_problem) if p is not None]
    rejected = next((p for p in problems if p.name == "credentials"), None)
    if rejected is not None:  # nothing else on Bandwidth can be read
        return [*checks, rejected, await _health(session, config)]
    if messaging is not None or voice is not None:
        checks.append(Check("credentials", OK, "accepted by the account API"))
    checks += problems

    if messaging is not None:
        expected = config.callback_url("/callbacks/messaging")
        checks.append(_url_check("messaging inbound URL", messaging, "InboundCallbackUrl",
                                 expected))
        checks.append(_url_check("messaging status URL", messaging, "OutboundCallbackUrl",
                                 expected, optional=True))
        checks.append(_creds_check("messaging callback credentials", messaging,
                                   ("InboundCallbackCreds", "OutboundCallbackCreds"), config))
    if voice is not None:
        checks.append(_url_check("voice initiated URL", voice, "CallInitiatedCallbackUrl",
                                 config.callback_url("/callbacks/voice/initiate")))
        checks.append(_url_check("voice status URL", voice, "CallStatusCallbackUrl",
                                 config.callback_url("/callbacks/voice/status")))
        checks.append(_creds_check("voice callback credentials", voice, ("CallbackCreds",),
                                   config))
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
