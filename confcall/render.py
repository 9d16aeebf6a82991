"""Rich renderings for the command line: the serve banner, status, history, check and setup."""

from __future__ import annotations

import shlex
from datetime import datetime
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from confcall.applications import ROLES, Application
from confcall.config import DEFAULT_CONFIG_FILE, DEFAULT_LOCAL_URL, LOOPBACK_HOSTS, Config
from confcall.state import format_duration

if TYPE_CHECKING:  # check.py and setup.py import aiohttp, which status and history must not load
    from confcall.check import Check
    from confcall.setup import Plan

CALLBACK_ROUTES = (
    ("messaging app", "/callbacks/messaging"),
    ("voice: initiated", "/callbacks/voice/initiate"),
    ("voice: status", "/callbacks/voice/status"),
    ("conference events", "/callbacks/voice/conference"),
)

# Control characters (C0, DEL, C1) and the Unicode controls that reorder or break what a
# terminal shows (bidirectional embeddings, overrides, isolates and marks; line and paragraph
# separators): a text from a caller, an organizer or Bandwidth could otherwise move the
# cursor, clear the screen, retitle the window or show one thing as another
_CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
_FORMATTING = (0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F),
               *range(0x2066, 0x206A))
_ESCAPES: dict[int, str] = {
    **{c: f"\\x{c:02x}" for c in _CONTROLS},
    **{c: f"\\u{c:04x}" for c in _FORMATTING},
}
_ESCAPES_BUT_NEWLINE = {c: escape for c, escape in _ESCAPES.items() if c != 0x0A}


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """`text` safe for a terminal: each control character shown as an escape (`\\x1b`,
    `\\u202e`). Everything untrusted that the command line shows goes through here."""
    return text.translate(_ESCAPES_BUT_NEWLINE if keep_newlines else _ESCAPES)


def exposed_without_credentials(config: Config) -> bool:
    """Live, reachable beyond this machine, and anyone may post callbacks."""
    return (not config.sandbox and config.server.callback_auth is None
            and config.server.host not in LOOPBACK_HOSTS)


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine, where Bandwidth cannot reach it."""
    host = urlsplit(url).hostname or ""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def try_command(config: Config) -> str:
    """The sandbox's first step, as a command that works as printed: with --url when the
    server is not where a client would look by default, with --config when one was named."""
    words = ["confcall", "simulate-text"]
    if config.source is not None and config.source != DEFAULT_CONFIG_FILE:
        words += ["--config", str(config.source)]
    if config.server.local_url != DEFAULT_LOCAL_URL:
        words += ["--url", config.server.local_url]
    words += ["--from", config.organizers[0], "+12015550123 +12015550124"]
    return shlex.join(words)


def banner(config: Config) -> RenderableType:
    """What `serve` prints once it listens. Print it with crop=False: the command to try is
    one line, so that it can be copied whole."""
    mode = ("[bold yellow]sandbox[/] (no Bandwidth account: an embedded fake Bandwidth "
            "takes every text and call)" if config.sandbox else "[bold green]live[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("mode", Text.from_markup(mode))
    # values as Text: a path or URL with [brackets] must not be read as rich markup
    table.add_row("listening", Text(config.server.listen_url))
    table.add_row("line", Text(config.bandwidth.phone_number))
    table.add_row("organizers", Text(", ".join(config.organizers)))
    table.add_row("database", Text(visible(config.store_name)))
    for label, route in CALLBACK_ROUTES:
        table.add_row(label, Text(config.callback_url(route)))
    title = Text("confcall: callback URLs for the Bandwidth applications below", style="bold")
    parts: list[RenderableType] = [title, table]
    if config.sandbox:
        parts.append(Text(
            f"What the sandbox sent: {config.server.local_url}/sandbox/messages and "
            f"/sandbox/conferences. Try:", style="dim"))
        parts.append(Text(f"  {visible(try_command(config))}", no_wrap=True, overflow="ignore"))
    if not config.sandbox and is_loopback_url(config.server.public_url):
        host = urlsplit(config.server.public_url).hostname
        parts.append(Text(
            f"warning: the callback URLs point at {host}, which Bandwidth cannot reach: set "
            "server.public_url (or --public-url) to the address Bandwidth reaches this server "
            "at.", style="bold red"))
    if exposed_without_credentials(config):
        parts.append(Text(
            "warning: listening beyond loopback with no callback credentials: anyone who "
            "finds this server can post callbacks. Set server.callback_username and "
            "server.callback_password.", style="bold red"))
    return Group(*parts)


STATE_STYLE = {
    "on_call": "bold green", "left": "yellow", "invited": "cyan", "never_joined": "red",
    "delivered": "green", "sent": "green", "read": "green", "queued": "cyan",
    "sending": "cyan", "failed": "bold red",
}
CHECK_MARK = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[bold red]✗[/]"}
DETAIL_SHOWN = 120  # characters of a retry's error shown beside a queued text


def _local(stamp: str | None, with_date: bool = False) -> str:
    """A time in the local zone, labelled with it: `2026-11-25 18:37 CET`, `18:37:55 CET`."""
    if stamp is None:
        return "–"
    moment = datetime.fromisoformat(stamp).astimezone()
    shown = moment.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")
    return f"{shown} {moment.tzname() or moment.strftime('%z')}"


def _styled(state: str) -> Text:
    return Text(state.replace("_", " "), style=STATE_STYLE.get(state, ""))


def _text_state(text: dict[str, Any]) -> Text:
    """What became of a text; why it failed, or why it is still waiting and how often it
    was tried."""
    shown = _styled(text["state"])
    detail = visible(text.get("detail") or "")
    if text["state"] == "failed" and detail:
        shown.append(f": {detail}")
    elif text["state"] == "queued" and text.get("attempts"):
        attempts = text["attempts"]
        if len(detail) > DETAIL_SHOWN:
            detail = detail[:DETAIL_SHOWN - 1] + "…"
        why = f": {detail}" if detail else ""
        shown.append(f" ({attempts} attempt{'s' if attempts != 1 else ''}{why})")
    return shown


def conference_view(report: dict[str, Any], *, history: bool = False) -> RenderableType:
    title = (f"{visible(report['id'])} · organizer {visible(report['organizer'])} · started "
             f"{_local(report['started'], True)}")
    if report["ended"]:
        title += f" · ended {_local(report['ended'], True)}"
    else:
        title += f" · {report['status']}"
    table = Table(title=Text(title), title_justify="left", expand=False, show_edge=False)
    table.add_column("number", no_wrap=True)
    table.add_column("call", no_wrap=True)
    table.add_column("time on call", justify="right")
    table.add_column("invitation text", overflow="fold")
    for person in report["participants"]:
        state = _styled(person["state"])
        if person["state"] == "on_call":
            state.append(f" since {_local(person['since'])}")
        invitation = person["invitation"]
        if invitation is None:
            text = Text("organizer" if not person["invited"] else "–", style="dim")
        else:
            text = _text_state(invitation)
        joined = person["state"] not in ("invited", "never_joined")
        spent = format_duration(person["seconds_on_call"]) if joined else ""
        table.add_row(Text(visible(person["number"])), state, spent, text)
    parts: list[RenderableType] = [table]
    pictures = len(report["closing_media"])
    if history or report["closing_text"] or pictures:
        closing = visible(report["closing_text"]) if report["closing_text"] else "–"
        if pictures:
            closing += f" (and {pictures} picture{'s' if pictures > 1 else ''})"
        parts.append(Text(f"  closing text: {closing}", overflow="fold"))
    others = [t for t in report["texts"] if t["purpose"] != "invite"]
    if others and not history:
        lines = Text("  other texts: ", style="dim")
        for number, other in enumerate(others):
            if number:
                lines.append("; ")
            lines.append(f"{visible(other['purpose'])} to {visible(other['to'])}: ")
            lines.append_text(_text_state(other))
        parts.append(lines)
    doubled = sorted({t["id"] for t in report["texts"] if t.get("possible_duplicate")})
    if doubled:
        parts.append(Text(f"  may have gone out twice (a send whose answer was lost): text "
                          f"{', '.join(map(str, doubled))}", style="yellow"))
    completion = report.get("completion")
    if completion and completion["state"] == "failed":
        parts.append(Text(f"  could not end the call on Bandwidth: {completion['detail']}",
                          style="bold red", overflow="fold"))
    elif completion and completion["state"] == "pending" and completion["attempts"]:
        parts.append(Text(f"  ending the call on Bandwidth: {completion['attempts']} attempts, "
                          f"last: {completion['detail']}", style="yellow", overflow="fold"))
    return Group(*parts)


def status_view(report: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = []
    if report["active"]:
        for conference in report["active"]:
            parts += [conference_view(conference), Text("")]
    else:
        parts.append(Text("No active conference.", style="bold"))
        if report["last_ended"]:
            parts += [Text("The last one:"), conference_view(report["last_ended"])]
    backlog = report["backlog"]
    parts.append(Text(f"Outbox: {backlog} waiting to be sent" if backlog
                      else "Outbox: empty", style="yellow" if backlog else "dim"))
    return Group(*parts)


def history_view(reports: list[dict[str, Any]]) -> RenderableType:
    if not reports:
        return Text("No conference has ended yet.")
    parts: list[RenderableType] = []
    for report in reports:
        parts.append(conference_view(report, history=True))
        parts.append(Text(f"  call ran {format_duration(report['call_seconds'])}\n",
                          style="dim"))
    return Group(*parts)


def checks_view(checks: list[Check]) -> RenderableType:
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for check in checks:
        detail = Text(visible(check.detail))
        if check.fix:
            detail.append(f"\n→ {visible(check.fix)}", style="cyan")
        table.add_row(CHECK_MARK[check.status], Text(visible(check.name)), detail)
    return table


def plans_view(plans: list[Plan]) -> RenderableType:
    """Each setting setup writes, as it is now and (under it) as it will be: one table per
    application."""
    parts: list[RenderableType] = []
    for plan in plans:
        application = plan.application
        title = Text(f"{plan.role.name} application {application.id}", style="bold")
        if application.name:
            title.append(f" ({application.name})", style="")
        if plan.note:
            title.append(f", {plan.note}", style="dim")
        table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1))
        table.add_column(no_wrap=True, style="bold")
        table.add_column(overflow="fold")
        for change in plan.changes:
            value = Text(change.before)
            if change.changed:
                value.append(f"\n→ {change.after}", style="green")
            else:
                value.append(" (unchanged)", style="dim")
            table.add_row(Text(change.setting), value)
        parts += [title, table, Text("")]
    return Group(*parts)


def applications_view(listing: list[Application]) -> RenderableType:
    """The account's Messaging-V2 and Voice-V2 applications to choose from, each with
    where it sends callbacks now."""
    lines: list[RenderableType] = []
    for role in ROLES:
        lines.append(Text(f"{role.service_type} applications", style="bold"))
        chosen = [a for a in listing if a.service_type == role.service_type]
        for application in chosen:
            line = Text(f"  {application.id}  ")
            line.append(application.name or "(no name)", style="bold")
            lines.append(line)
            lines.append(Text(f"    {role.url_setting} "
                              f"{application.get(role.url_setting) or 'not set'}", style="dim"))
        if not chosen:
            lines.append(Text("  none", style="dim"))
        lines.append(Text(""))
    return Group(*lines)


def recordings_view(recordings: list[dict[str, Any]]) -> RenderableType:
    if not recordings:
        return Text("No recordings.")
    table = Table(show_edge=False)
    table.add_column("conference", no_wrap=True)
    table.add_column("made")
    table.add_column("status")
    table.add_column("link", overflow="fold")
    for recording in recordings:
        link = visible(recording["link"])
        if recording["expired"]:
            link = f"expired {_local(recording['expires'], True)}"
        table.add_row(visible(recording["conference"]), _local(recording["made"], True),
                      visible(recording["status"]), link)
    return table
