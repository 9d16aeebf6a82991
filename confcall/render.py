"""Rich renderings for the command line: the serve banner, status, history, check and setup."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from confcall.applications import ROLES, Application
from confcall.conference import format_duration
from confcall.config import LOOPBACK_HOSTS, Config

if TYPE_CHECKING:  # check.py and setup.py import aiohttp, which status and history must not load
    from confcall.check import Check
    from confcall.setup import Plan

CALLBACK_ROUTES = (
    ("messaging app", "/callbacks/messaging"),
    ("voice: initiated", "/callbacks/voice/initiate"),
    ("voice: status", "/callbacks/voice/status"),
    ("conference events", "/callbacks/voice/conference"),
)


def exposed_without_credentials(config: Config) -> bool:
    """Live, reachable beyond this machine, and anyone may post callbacks."""
    return (not config.sandbox and config.server.callback_auth is None
            and config.server.host not in LOOPBACK_HOSTS)


def banner(config: Config) -> RenderableType:
    mode = ("[bold yellow]sandbox[/] (no Bandwidth account: an embedded fake Bandwidth "
            "takes every text and call)" if config.sandbox else "[bold green]live[/]")
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("mode", Text.from_markup(mode))
    # values as Text: a path or URL with [brackets] must not be read as rich markup
    table.add_row("listening", Text(f"http://{config.server.host}:{config.server.port}"))
    table.add_row("line", Text(config.bandwidth.phone_number))
    table.add_row("organizers", Text(", ".join(config.organizers)))
    table.add_row("database", Text(str(config.store_path)))
    for label, route in CALLBACK_ROUTES:
        table.add_row(label, Text(config.callback_url(route)))
    title = Text("confcall: callback URLs for the Bandwidth applications below", style="bold")
    parts: list[RenderableType] = [title, table]
    if config.sandbox:
        parts.append(Text(
            f"What the sandbox sent: {config.server.local_url}/sandbox/messages and "
            f"/sandbox/conferences. Try: confcall simulate-text --from "
            f"{config.organizers[0]} \"+12015550123 +12015550124\"", style="dim"))
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


def _local(stamp: str | None, with_date: bool = False) -> str:
    if stamp is None:
        return "–"
    moment = datetime.fromisoformat(stamp).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")


def _styled(state: str) -> Text:
    return Text(state.replace("_", " "), style=STATE_STYLE.get(state, ""))


def conference_view(report: dict[str, Any], *, history: bool = False) -> RenderableType:
    title = (f"{report['id']} · organizer {report['organizer']} · started "
             f"{_local(report['started'], True)}")
    if report["ended"]:
        title += f" · ended {_local(report['ended'], True)}"
    else:
        title += f" · {report['status']}"
    table = Table(title=Text(title), title_justify="left", expand=False, show_edge=False)
    table.add_column("number", no_wrap=True)
    table.add_column("call")
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
            text = _styled(invitation["state"])
            if invitation["state"] == "failed" and invitation["detail"]:
                text.append(f": {invitation['detail']}")
        joined = person["state"] not in ("invited", "never_joined")
        spent = format_duration(person["seconds_on_call"]) if joined else ""
        table.add_row(Text(person["number"]), state, spent, text)
    parts: list[RenderableType] = [table]
    if history or report["closing_text"]:
        closing = report["closing_text"] or "–"
        parts.append(Text(f"  closing text: {closing}", overflow="fold"))
    others = [t for t in report["texts"] if t["purpose"] != "invite"]
    if others and not history:
        lines = Text("  other texts: ", style="dim")
        lines.append("; ".join(f"{t['purpose']} to {t['to']}: {t['state']}" for t in others))
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
        detail = Text(check.detail)
        if check.fix:
            detail.append(f"\n→ {check.fix}", style="cyan")
        table.add_row(CHECK_MARK[check.status], Text(check.name), detail)
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
