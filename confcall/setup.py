"""`confcall setup`: write the callback URLs and credentials confcall needs into the account's
two Bandwidth applications, changing nothing else in them; keep a generated pair of callback
credentials in the config file."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from confcall.applications import (
    Application,
    Change,
    Credentials,
    Role,
    account_error,
    parse_application,
    rewrite,
    wanted,
)
from confcall.bandwidth import BandwidthClient
from confcall.check import CredentialsRejected, find_applications
from confcall.config import Config
from confcall.errors import BandwidthError, ConfcallError, ConfigError

REJECTED = ("Bandwidth rejected the API username/password (401): check bandwidth.username "
            "and bandwidth.password")


@dataclass(frozen=True)
class Plan:
    """One application: as read, the document to PUT, and what changes."""

    role: Role
    application: Application
    body: str
    changes: list[Change]
    note: str = ""  # how the application was found, when no id named it


@dataclass(frozen=True)
class Survey:
    """Either a plan for each application, or, while one is not chosen, the account's
    applications to choose from."""

    plans: list[Plan]
    unchosen: list[Role]
    listing: list[Application]


async def survey(session: aiohttp.ClientSession, config: Config, ids: dict[str, str | None],
                 id_names: dict[str, str], credentials: Credentials | None) -> Survey:
    """Read both applications (by id, or found by this server's callback URLs) and plan
    what to write into each (no plans without `credentials`: choosing needs none).
    `id_names` says where each role's id came from, for messages."""
    client = BandwidthClient(session, config.bandwidth, config.request_timeout)
    try:
        found, listing = await find_applications(client, config, ids, id_names)
        unchosen = [f.role for f in found if f.application is None and not f.configured]
        broken = [f.check for f in found if f.application is None and f.configured]
        if broken:
            raise ConfcallError(f"{broken[0].detail}: {broken[0].fix}" if broken[0].fix
                                else broken[0].detail)
        if unchosen or credentials is None:
            return Survey([], unchosen, listing)
        plans = []
        for item in found:
            assert item.application is not None
            # read afresh: the PUT body is this exact text with confcall's elements replaced
            document = await client.get_application(item.application.id)
            body, changes = rewrite(document, item.role,
                                    wanted(item.role, config, credentials))
            note = "" if item.configured else f"found by its {item.role.url_setting}"
            plans.append(Plan(item.role, parse_application(document), body, changes, note))
        return Survey(plans, [], listing)
    except CredentialsRejected:
        raise ConfcallError(REJECTED) from None
    except BandwidthError as exc:
        if exc.status == 401:
            raise ConfcallError(REJECTED) from None
        raise ConfcallError(f"reading the applications: {account_error(exc)}") from None


async def write(session: aiohttp.ClientSession, config: Config, plans: list[Plan],
                written: Callable[[Plan], None]) -> None:
    """PUT each plan's document, calling `written` after each one Bandwidth took."""
    client = BandwidthClient(session, config.bandwidth, config.request_timeout)
    for plan in plans:
        try:
            answer = await client.update_application(plan.application.id, plan.body)
        except BandwidthError as exc:
            reason = REJECTED if exc.status == 401 else account_error(exc)
            raise ConfcallError(f"writing the {plan.role.name} application "
                                f"{plan.application.id}: {reason}") from None
        stored = parse_application(answer) if answer.strip() else None
        if stored is not None and stored.id and stored.id != plan.application.id:
            raise ConfcallError(f"writing {plan.application.id}: Bandwidth answered with "
                                f"application {stored.id}")
        written(plan)


# --- callback credentials ------------------------------------------------------------------


def new_credentials() -> Credentials:
    """A callback username and password nobody can guess (192 random bits of password)."""
    return Credentials(f"confcall-{secrets.token_hex(4)}", secrets.token_urlsafe(24))


_SECTION = re.compile(r"^\s*\[\s*(?P<name>[^\]]*?)\s*\]\s*(#.*)?$")


def _with_server_keys(text: str, values: dict[str, str]) -> str:
    """`text` with each `values` key set in its [server] section: a line of that key is
    replaced, a missing key added after the section's last line; no other line changes."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    header = next((i for i, line in enumerate(lines)
                   if (m := _SECTION.match(line)) and m["name"] == "server"), None)
    rendered = {key: f"{key} = {json.dumps(value)}" for key, value in values.items()}
    if header is None:
        if lines and lines[-1].strip():
            lines.append(newline)
        lines.append(f"[server]{newline}")
        lines += [line + newline for line in rendered.values()]
        return "".join(lines)
    end = next((i for i in range(header + 1, len(lines)) if _SECTION.match(lines[i])),
               len(lines))
    last = header  # the section's last line that is not blank
    for i in range(header + 1, end):
        key = lines[i].split("=", 1)[0].strip()
        if key in rendered:
            ending = lines[i][len(lines[i].rstrip("\r\n")):] or newline
            lines[i] = rendered.pop(key) + ending
        if lines[i].strip():
            last = i
    lines[last + 1:last + 1] = [line + newline for line in rendered.values()]
    return "".join(lines)


def save_credentials(path: Path, credentials: Credentials) -> None:
    """Set server.callback_username and server.callback_password in the TOML file at `path`
    (created when missing), leaving every other line as it was; the file ends up 0600,
    replaced at once so that no reader sees half of it."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    values = {"callback_username": credentials.user, "callback_password": credentials.password}
    updated = _with_server_keys(text, values)
    # prove the edit: the file must read as before, plus exactly the two keys
    try:
        before, after = tomllib.loads(text), tomllib.loads(updated)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    server = before.get("server", {})
    if not isinstance(server, dict) or after != {**before, "server": {**server, **values}}:
        raise ConfigError(f"cannot add the callback credentials to {path} safely: set "
                          "server.callback_username and server.callback_password there by hand")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(updated)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
