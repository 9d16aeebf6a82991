"""Rich renderings for the command line: the serve banner, status and history."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from confcall.config import LOOPBACK_HOSTS, Config

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
    table.add_row("listening", f"http://{config.server.host}:{config.server.port}")
    table.add_row("line", config.bandwidth.phone_number)
    table.add_row("organizers", ", ".join(config.organizers))
    table.add_row("database", str(config.store_path))
    for label, route in CALLBACK_ROUTES:
        table.add_row(label, config.callback_url(route))
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
