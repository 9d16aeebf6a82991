"""The `confcall` command line: each command parses, loads config, makes one library call,
renders. Nothing here imports aiohttp at module level, so commands that do not serve start
fast."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from confcall import __version__
from confcall.config import Config, load_config
from confcall.errors import ConfcallError

app = typer.Typer(
    name="confcall",
    help="A conference line on one Bandwidth number: text a list of numbers to start a "
    "conference, they call in, your next text ends it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: ./confcall.toml if present).",
                 dir_okay=False, show_default=False),
]


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str) -> NoReturn:
    """One line on stderr, exit 1: how every expected failure ends."""
    _stderr().print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


def _config(path: Path | None, **overrides: Any) -> Config:
    try:
        return load_config(path, os.environ, overrides)
    except ConfcallError as exc:
        fail(str(exc))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"confcall {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """A conference line on one Bandwidth number."""


@app.command()
def serve(
    config_path: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.",
                                             show_default="127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.",
                                             show_default="8080")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="URL Bandwidth reaches this server at.", show_default="http://HOST:PORT")] = None,
) -> None:
    """Run the webhook server.

    With no Bandwidth credentials configured it runs in sandbox mode: an embedded fake
    Bandwidth takes the texts and conference updates, so the whole flow works offline.

    Example: [bold]confcall serve --port 8080[/]
    """
    import logging

    from confcall.render import banner

    config = _config(config_path, **{"server.host": host, "server.port": port,
                                     "server.public_url": public_url})
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rich.console import Console

    Console(stderr=True).print(banner(config))
    from aiohttp import web

    from confcall.app import create_app

    try:
        web.run_app(create_app(config), host=config.server.host, port=config.server.port,
                    print=None, access_log=None, shutdown_timeout=4.0)
    except OSError as exc:
        fail(f"cannot listen on {config.server.host}:{config.server.port}: {exc.strerror}")
    except ConfcallError as exc:
        fail(str(exc))


def main() -> None:
    app()
