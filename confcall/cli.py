"""The `confcall` command line: each command parses, loads config, makes one library call,
renders. Nothing here imports aiohttp at module level, so commands that do not serve start
fast."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from confcall import __version__
from confcall.config import DEFAULT_CONFIG_FILE, LOOPBACK_HOSTS, Config, given_keys, load_config
from confcall.errors import ConfcallError

app = typer.Typer(
    name="confcall",
    help="A conference line on one Bandwidth number: text a list of numbers to start a "
    "conference, they call in, your next text ends it.",
    no_args_is_help=True,
    add_completion=False,
    # plain help: typer's rich help formatter alone costs more start-up time than all of
    # typer, and a command that does not serve should start about as fast as `import typer`
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PublicUrlOption = Annotated[str | None, typer.Option(
    "--public-url", help="URL Bandwidth reaches the server at.",
    show_default="server.public_url, else http://HOST:PORT")]
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
    from rich.text import Text

    from confcall.render import visible

    line = Text.assemble(("error:", "bold red"), " ", visible(message))
    _stderr().print(line, highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


class _Before:
    """Options given before the command, which every command reads."""

    config: Path | None = None


def _config(path: Path | None, *, need_live: bool = True, refuse_placeholders: bool = False,
            **overrides: Any) -> Config:
    """The configuration, from the command's --config, else the one given before the
    command (`confcall --config X status`), else ./confcall.toml when present."""
    if path is None:
        path = _Before.config
    try:
        return load_config(path, os.environ, overrides, need_live=need_live,
                           refuse_placeholders=refuse_placeholders)
    except ConfcallError as exc:
        fail(str(exc))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"confcall {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    config_path: ConfigOption = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """A conference line on one Bandwidth number."""
    # `confcall --config X status` as well as `confcall status --config X`; the command's
    # own --config wins (see _config)
    _Before.config = config_path


@app.command()
def serve(
    config_path: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.",
                                             show_default="127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.",
                                             show_default="8080")] = None,
    public_url: PublicUrlOption = None,
    log_format: Annotated[str | None, typer.Option(
        "--log-format", help="text, or json: one JSON object a line (for journald or a "
        "log shipper).", show_default="text")] = None,
) -> None:
    """Run the webhook server.

    With no Bandwidth credentials configured it runs in sandbox mode: an embedded fake
    Bandwidth takes the texts and conference updates, so the whole flow works offline.

    Example:

    \b
      confcall serve --port 8080
    """
    flags: dict[str, Any] = {"server.host": host, "server.port": port,
                             "server.public_url": public_url, "log.format": log_format}
    config = _config(config_path, refuse_placeholders=True, **flags)
    from confcall import logs, serving
    from confcall.render import banner

    try:
        with logs.to_stderr(mask_numbers=config.mask_numbers,
                            as_json=config.log_format == "json"):
            serving.run(config, lambda: _stderr().print(banner(config), crop=False))
    except ConfcallError as exc:
        fail(str(exc))


# --- shared helpers for the commands below ---------------------------------------------

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (keys in the README).")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", help="The running server.", show_default="http://HOST:PORT from config")]
FromOption = Annotated[str, typer.Option("--from", help="The sender or caller.",
                                         show_default=False)]
ToOption = Annotated[str | None, typer.Option(
    "--to", help="The Bandwidth number.", show_default="bandwidth.phone_number")]


def _stdout() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def _print_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _number(text: str, config: Config, option: str) -> str:
    from confcall.phone import normalise

    try:
        return normalise(text, config.default_region)
    except ConfcallError as exc:
        fail(f"{option}: {exc}")


def _server_url(url: str | None, config: Config) -> str:
    """The server to talk to: --url (host:port alone means http://) or the config's."""
    if url is None:
        return config.server.local_url
    from urllib.parse import urlsplit

    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        fail(f"--url: {url!r} is not an http:// or https:// URL (or HOST:PORT)")
    return text.rstrip("/")


def _run(config: Config, url: str | None, action: Any) -> Any:
    """Run `action(poster)` against the server at `url` (default: this config's server)."""
    import asyncio

    server = _server_url(url, config)
    import aiohttp

    from confcall.simulate import Poster

    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await action(Poster(session, config, server))

    try:
        return asyncio.run(go())
    except ConfcallError as exc:
        fail(str(exc))


def _open_store(config: Config) -> Any:
    from confcall.store import open_reader

    try:
        return open_reader(config)
    except ConfcallError as exc:
        fail(str(exc))


# --- commands ----------------------------------------------------------------------------


@app.command()
def check(config_path: ConfigOption = None, public_url: PublicUrlOption = None,
          as_json: JsonOption = False) -> None:
    """Check that this line will work: config, Bandwidth credentials, the two applications
    (by id, or found by this server's callback URLs) and their callback URLs and
    credentials, and that the public URL reaches this server.

    Exits 0 when nothing failed, 1 otherwise.

    Example:

    \b
      confcall check --public-url https://confcall.example.com
    """
    overrides: dict[str, Any] = {"server.public_url": public_url}
    config = _config(config_path, **overrides)
    checks = _checks(config)
    if as_json:
        from confcall.check import passed

        _print_json({"passed": passed(checks), "mode": "sandbox" if config.sandbox else "live",
                     "checks": [c.as_json() for c in checks]})
    else:
        from confcall.render import checks_view

        _stdout().print(checks_view(checks))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(code=1)


def _checks(config: Config) -> Any:
    import asyncio

    import aiohttp

    from confcall.check import run_checks

    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await run_checks(config, session)

    return asyncio.run(go())


@app.command()
def setup(
    messaging_app: Annotated[str | None, typer.Option(
        "--messaging-app", metavar="ID", help="The Messaging-V2 application to set up.",
        show_default="bandwidth.messaging_application_id")] = None,
    voice_app: Annotated[str | None, typer.Option(
        "--voice-app", metavar="ID", help="The Voice-V2 application to set up.",
        show_default="bandwidth.voice_application_id")] = None,
    generate_credentials: Annotated[bool, typer.Option(
        "--generate-credentials",
        help="Make a new callback username and password, save them in the --config file "
        "(./confcall.toml when none is given: created if missing; mode 0600) and write "
        "them into both applications.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the before/after table and write nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Write without asking.")] = False,
    public_url: PublicUrlOption = None,
    config_path: ConfigOption = None,
) -> None:
    """Write what confcall needs into the two Bandwidth applications: the callback URLs
    (built from the public URL), POST as their method, and the callback credentials.
    Nothing else in either application changes. Shows a before/after table and asks
    before writing, then runs `confcall check`.

    Without application ids (the options, or bandwidth.messaging_application_id and
    bandwidth.voice_application_id) it takes the applications that already call this
    server, or lists the account's applications to choose from.

    Exits 0 when the applications were written and check finds nothing wrong on
    Bandwidth's side (the public URL may wait for `confcall serve`), 1 otherwise.

    Example:

    \b
      confcall setup
      confcall setup --messaging-app 93de2206-… --voice-app 04e88489-… \\
          --generate-credentials --public-url https://confcall.example.com
    """
    import asyncio
    from urllib.parse import urlsplit

    import aiohttp

    from confcall.applications import MESSAGING, VOICE, Credentials
    from confcall.render import applications_view, checks_view, plans_view
    from confcall.setup import Survey, new_credentials, save_credentials, survey, write

    overrides: dict[str, Any] = {"server.public_url": public_url}
    config = _config(config_path, **overrides)
    if config.sandbox:
        fail("sandbox mode: no Bandwidth account is configured, so there is nothing to set "
             "up; set bandwidth.account_id, username and password")
    target = config_path or DEFAULT_CONFIG_FILE
    server = config.server
    if public_url is None and "server.public_url" not in given_keys(config_path, os.environ):
        fail(f"server.public_url is not set, so the callback URLs would start "
             f"{server.public_url}, which Bandwidth cannot reach: set it (or --public-url, or "
             "CONFCALL_SERVER_PUBLIC_URL) to the HTTPS address confcall is reached at")
    if generate_credentials and (server.callback_username or server.callback_password):
        fail(f"callback credentials are already configured (user {server.callback_username}): "
             "drop --generate-credentials to write those, or remove them to make a new pair")
    credentials = (new_credentials() if generate_credentials
                   else Credentials(*server.callback_auth) if server.callback_auth else None)
    ids = {"messaging": messaging_app or config.bandwidth.messaging_application_id,
           "voice": voice_app or config.bandwidth.voice_application_id}
    id_names = {"messaging": MESSAGING.option if messaging_app else MESSAGING.key,
                "voice": VOICE.option if voice_app else VOICE.key}

    async def look() -> Survey:
        async with aiohttp.ClientSession() as session:
            return await survey(session, config, ids, id_names, credentials)

    try:
        found = asyncio.run(look())
    except ConfcallError as exc:
        fail(str(exc))
    console = _stdout()
    if found.unchosen:
        console.print(f"Applications on account {config.bandwidth.account_id}:")
        console.print(applications_view(found.listing))
        absent = [r.service_type for r in found.unchosen
                  if not any(a.service_type == r.service_type for a in found.listing)]
        if absent:
            fail(f"the account has no {' or '.join(absent)} application: create it in the "
                 "Bandwidth dashboard, link it to your number's location, and run setup again")
        options = " ".join(f"{r.option} ID" for r in found.unchosen)
        keys = " and ".join(r.key for r in found.unchosen)
        fail(f"choose from the list above: confcall setup {options} (or set {keys})")
    if credentials is None:
        fail(f"confcall has no callback credentials for Bandwidth to send: add "
             f"--generate-credentials (a new pair, saved in {target}), or set "
             "server.callback_username and server.callback_password")

    console.print(f"account {config.bandwidth.account_id} · public URL "
                  f"{config.server.public_url}\n", markup=False)
    if urlsplit(config.server.public_url).hostname in LOOPBACK_HOSTS:
        console.print(f"warning: {config.server.public_url} is on this machine only: Bandwidth "
                      "cannot reach it\n", style="bold yellow", markup=False)
    console.print(plans_view(found.plans))
    if generate_credentials:
        console.print(f"The callback credentials {'would be' if dry_run else 'are'} a new "
                      f"pair, {'' if dry_run else 'to be '}saved in {target} (mode 0600).",
                      markup=False)
    if dry_run:
        console.print("dry run: nothing written")
        return
    if not yes:
        try:
            confirmed = typer.confirm("Write these settings to both applications?")
        except typer.Abort:
            confirmed = False
        if not confirmed:
            fail("nothing written")
    # the check at the end looks at the applications written, whatever else matches
    overrides |= {plan.role.key: plan.application.id for plan in found.plans}
    if generate_credentials:
        try:
            save_credentials(target, credentials)
        except ConfcallError as exc:
            fail(str(exc))
        console.print(f"saved the callback credentials in {target} (mode 0600)", markup=False)
    config = _config(target if generate_credentials else config_path, **overrides)

    async def store() -> None:
        async with aiohttp.ClientSession() as session:
            await write(session, config, found.plans, lambda plan: console.print(
                f"wrote the {plan.role.name} application {plan.application.id}",
                markup=False))

    try:
        asyncio.run(store())
    except ConfcallError as exc:
        fail(str(exc))
    console.print()
    checks = _checks(config)
    console.print(checks_view(checks))
    failed = {c.name for c in checks if c.status == "fail"}
    if failed == {"public URL"}:
        console.print(f"\nBandwidth's side is set up. `confcall check` passes once "
                      f"`confcall serve` answers at {config.server.public_url}.", markup=False)
    elif failed:
        raise typer.Exit(code=1)


@app.command("simulate-text")
def simulate_text(
    text: Annotated[str, typer.Argument(help="The text message.", show_default=False)],
    sender: FromOption,
    to: ToOption = None,
    url: UrlOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Post a text to a running server, shaped exactly as Bandwidth's message-received
    callback, and print what the server answered.

    Example:

    \b
      confcall simulate-text --from +12015550101 "+12015550123 +12015550124"
    """
    from confcall.simulate import answer_json

    config = _config(config_path)
    sender_number = _number(sender, config, "--from")
    line = _number(to, config, "--to") if to else config.bandwidth.phone_number
    answer = _run(config, url, lambda poster: poster.text(sender_number, line, text))
    if as_json:
        _print_json({"status": answer.status, "answer": answer_json(answer)})
    else:
        from confcall.render import visible

        _stdout().print(visible(f"server answered {answer.status}: {answer.body}"),
                        markup=False)
    if answer.status >= 300:
        raise typer.Exit(code=1)


@app.command("simulate-call")
def simulate_call(
    caller: FromOption,
    to: ToOption = None,
    hangup: Annotated[bool, typer.Option("--hangup", help="Hang up afterwards.")] = False,
    dialled: Annotated[str | None, typer.Option(
        "--dialled", metavar="CONFERENCE",
        help="Answer a call RING placed for this conference, instead of calling in.",
        show_default=False)] = None,
    voicemail: Annotated[bool, typer.Option(
        "--voicemail", help="With --dialled: a voicemail answers, not a person.")] = False,
    recorded: Annotated[str | None, typer.Option(
        "--recording", metavar="CONFERENCE",
        help="Instead of a call: Bandwidth saying a recording of this conference is ready.",
        show_default=False)] = None,
    url: UrlOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Call a running server as Bandwidth would (an initiate callback) and show the BXML it
    answered, with the verdict. Against a live server it also posts the member-join event
    Bandwidth would send; a sandbox server's own fake Bandwidth sends those. With
    --dialled, answer a call the server placed (RING) instead.

    Example:

    \b
      confcall simulate-call --from +12015550123 --hangup
      confcall simulate-call --from +12015550124 --dialled confcall-ab044256b55b
      confcall simulate-call --from +12015550101 --recording confcall-ab044256b55b
    """
    from confcall.simulate import masked, pretty_xml

    config = _config(config_path)
    if recorded is not None:
        from confcall.simulate import recording

        ready = _run(config, url, lambda poster: recording(poster, recorded))
        if ready.status >= 300:
            fail(f"server answered {ready.status}: {ready.body}")
        if as_json:
            _print_json({"conference": recorded, "status": ready.status})
        else:
            _stdout().print(f"a recording of {recorded} is ready: the organizer gets its "
                            "link (in the recap, or by text once the recap has gone)",
                            markup=False)
        return
    caller_number = _number(caller, config, "--from")
    line = _number(to, config, "--to") if to else config.bandwidth.phone_number
    outcome = _run(config, url, lambda poster: poster.call(
        caller_number, line, hangup=hangup, dialled_for=dialled,
        machine="answering-machine" if voicemail else "human"))
    answer = outcome.answer
    if answer.status != 200:
        fail(f"server answered {answer.status}: {answer.body}")
    verdict = "joined" if outcome.conference else "refused"
    # the callback password rides in the BXML (for Bandwidth's conference events): a
    # terminal, a scrollback or a pasted bug report is no place for it
    bxml = masked(answer.body)
    if as_json:
        _print_json({"call_id": outcome.call_id, "status": answer.status, "verdict": verdict,
                     "conference": outcome.conference, "bxml": bxml,
                     "hung_up": outcome.hung_up})
        return
    from confcall.render import visible

    console = _stdout()
    if outcome.conference:
        console.print(visible(f"{caller_number} joins conference {outcome.conference}"),
                      style="bold green", markup=False)
    else:
        console.print(f"{caller_number} refused: the server hangs up", style="bold red",
                      markup=False)
    console.print(visible(pretty_xml(bxml), keep_newlines=True), markup=False, soft_wrap=True)
    if outcome.hung_up:
        console.print(f"call {outcome.call_id} hung up", markup=False)


@app.command()
def status(
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", "-w",
                                        help="Refresh every second until Ctrl-C.")] = False,
) -> None:
    """Show the active conferences: who is on the call, who left, who never joined, what
    became of each text, and the outbox backlog. Reads the database directly, so it works
    with the server stopped.

    Example:

    \b
      confcall status --json
    """
    import time

    from confcall import report

    config = _config(config_path, need_live=False)
    store = _open_store(config)

    def read() -> Any:
        try:
            return report.status(store, time.time())
        except ConfcallError as exc:
            fail(str(exc))

    if as_json:
        _print_json(read())
        return
    from confcall.render import status_view

    if not watch:
        _stdout().print(status_view(read()))
        return
    from rich.live import Live

    try:
        with Live(status_view(read()), console=_stdout(),
                  refresh_per_second=4, screen=False) as live:
            while True:
                time.sleep(1)
                live.update(status_view(read()))
    except KeyboardInterrupt:
        pass


@app.command()
def history(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1,
                                       help="How many conferences.")] = 10,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List ended conferences, newest first: organizer, start, end, who joined and for how
    long, who never joined, and the closing text.

    Example:

    \b
      confcall history --limit 5
    """
    import time

    from confcall import report

    config = _config(config_path, need_live=False)
    try:
        reports = report.history(_open_store(config), limit, time.time())
    except ConfcallError as exc:
        fail(str(exc))
    if as_json:
        _print_json(reports)
        return
    from confcall.render import history_view

    _stdout().print(history_view(reports))


OrganizerOption = Annotated[str | None, typer.Option(
    help="Whose conference: needed when several are active, or with no database here.",
    show_default=False)]


@app.command()
def end(
    message: Annotated[str | None, typer.Option(
        "--message", "-m", help="The closing text sent to everyone.",
        show_default="a default goodbye")] = None,
    organizer: OrganizerOption = None,
    url: UrlOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """End an active conference through the running server, with the same effects as the
    organizer's text: the message goes to everyone invited, then every call drops.

    The conference is found in the database when there is one here; with --organizer no
    database is needed (the end is that organizer's text, posted to the server at --url).

    Example:

    \b
      confcall end --message "Thanks, notes to follow"
      confcall end --url 203.0.113.7:8080 --organizer +12015550101
    """
    from confcall.conference import DEFAULT_CLOSING

    config = _config(config_path)
    text = message or DEFAULT_CLOSING
    target, sender, server, status = _as_organizer(config, url, organizer, text)
    if as_json:
        _print_json({"conference": target.id if target is not None else None,
                     "organizer": sender, "closing_text": text, "status": status})
        return
    from confcall.render import visible

    if target is not None:
        shown = (f"ending {target.id} (organizer {target.organizer}): "
                 f"{len(target.invitees)} invitee(s) get \"{text}\"")
    else:
        shown = (f"ending the conference of {sender} at {server}: everyone invited gets "
                 f"\"{text}\"")
    _stdout().print(visible(shown), markup=False)


@app.command()
def ring(
    number: Annotated[str | None, typer.Argument(
        help="One invitee to call; without it, everyone invited who is not on the call.",
        show_default=False, metavar="NUMBER")] = None,
    organizer: OrganizerOption = None,
    url: UrlOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Call the invitees who are not on the call (or one of them) into the conference, as
    the organizer's text RING does; the organizer gets the answer by text.

    Example:

    \b
      confcall ring
      confcall ring +12015550123
    """
    config = _config(config_path)
    text = "RING" + (f" {_number(number, config, 'NUMBER')}" if number else "")
    _command(config, url, organizer, text, as_json)


@app.command()
def add(
    numbers: Annotated[list[str], typer.Argument(help="The numbers to invite.",
                                                 show_default=False, metavar="NUMBERS")],
    organizer: OrganizerOption = None,
    url: UrlOption = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Invite more numbers to the active conference, as the organizer's text ADD does; they
    get the invitation, the organizer gets the answer by text.

    Example:

    \b
      confcall add +12015550125 "(201) 555-0126"
    """
    config = _config(config_path)
    text = "ADD " + ", ".join(_number(n, config, "NUMBERS") for n in numbers)
    _command(config, url, organizer, text, as_json)


def _command(config: Config, url: str | None, organizer: str | None, text: str,
             as_json: bool) -> None:
    target, sender, _, status = _as_organizer(config, url, organizer, text)
    if as_json:
        _print_json({"conference": target.id if target is not None else None,
                     "organizer": sender, "command": text, "status": status})
        return
    _stdout().print(f"sent {text} as {sender}: the answer goes to them by text",
                    markup=False)


def _as_organizer(config: Config, url: str | None, organizer: str | None,
                  text: str) -> tuple[Any, str, str, int]:
    """Post `text` to the server as the organizer of the one active conference (or of
    --organizer's, which needs no database here); the conference (None without a
    database), the organizer, the server and its answer's status."""
    server = _server_url(url, config)
    who = _number(organizer, config, "--organizer") if organizer is not None else None
    target = None
    if config.store_url or config.store_path.exists():
        target = _active_conference(_open_store(config), who)
    elif who is None:
        fail(f"no database at {config.store_path} to find the active conference in: name "
             "its organizer with --organizer")
    sender = target.organizer if target is not None else who
    assert sender is not None
    line = config.bandwidth.phone_number
    answer = _run(config, server, lambda poster: poster.text(sender, line, text))
    if answer.status >= 300:
        fail(f"server answered {answer.status}: {answer.body}")
    return target, sender, server, answer.status


def _active_conference(store: Any, organizer: str | None) -> Any:
    """The one active conference to end (of `organizer`, when given), or a one-line error."""
    active = [c for c in store.active_conferences() if c.status == "active"]
    if organizer is not None:
        active = [c for c in active if c.organizer == organizer]
        if not active:
            fail(f"{organizer} has no active conference")
    if not active:
        fail("there is no active conference")
    if len(active) > 1:
        listed = ", ".join(c.organizer for c in active)
        fail(f"several conferences are active (organizers {listed}): choose one with "
             "--organizer")
    return active[0]


@app.command()
def recordings(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1,
                                       help="How many recordings.")] = 20,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the conferences' recordings, newest first: the conference, what Bandwidth said
    of it, how long it is, the link the organizer got and until when it works.

    Example:

    \b
      confcall recordings --json
    """
    import time

    config = _config(config_path, need_live=False)
    try:
        found = _open_store(config).recordings(limit)
    except ConfcallError as exc:
        fail(str(exc))
    from confcall.report import iso

    now = time.time()
    listed = [{"conference": r.conference_id, "recording": r.recording.recording_id,
               "status": r.recording.status, "duration": r.recording.duration,
               "made": iso(r.created_at), "link": r.recording.link,
               "expires": iso(r.recording.expires_at),
               "expired": r.recording.expires_at < now} for r in found]
    if as_json:
        _print_json(listed)
        return
    from confcall.render import recordings_view

    _stdout().print(recordings_view(listed))


@app.command()
def backup(
    path: Annotated[Path, typer.Argument(help="Where to write the copy.", show_default=False,
                                         dir_okay=False)],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a consistent copy of the database to PATH, safe while `confcall serve` runs
    (SQLite's online backup: the copy is the database as of one moment). The copy is
    private to its owner (mode 0600) and checked before it is kept.

    Example:

    \b
      confcall backup /var/backups/confcall-$(date +%F).db
    """
    from confcall.backup import backup as copy_database

    config = _config(config_path)
    if config.store_url:
        fail(f"{config.store_name} is PostgreSQL: back it up with pg_dump (pg_dump "
             "--format=custom URL > confcall.dump), not confcall backup")
    console = _stderr()

    def progress(done: int, total: int) -> None:
        if total > 4 * 256 and not as_json:  # only worth a word for a big database
            console.print(f"copied {done} of {total} pages", highlight=False)

    try:
        copied = copy_database(config.store_path, path, overwrite=force, progress=progress)
    except ConfcallError as exc:
        fail(str(exc))
    if as_json:
        _print_json({"source": str(copied.source), "backup": str(copied.target),
                     "bytes": copied.size, "conferences": copied.conferences})
    else:
        _stdout().print(f"backed up {copied.source} to {copied.target}: {copied.conferences} "
                        f"conference(s), {copied.size / 1024:.0f} KiB", markup=False)


@app.command()
def restore(
    backup_file: Annotated[Path, typer.Argument(
        help="A copy made by `confcall backup`.", show_default=False, dir_okay=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put a backup in place of the database (store.path). Refused while a `confcall serve`
    uses that database: stop it first. Asks before replacing a database that exists.

    Example:

    \b
      systemctl stop confcall && confcall restore confcall-2026-11-30.db --yes
    """
    from confcall.backup import restore as put_back

    config = _config(config_path)
    if config.store_url:
        fail(f"{config.store_name} is PostgreSQL: restore it with pg_restore, not "
             "confcall restore")
    target = config.store_path
    if target.exists() and not yes and not typer.confirm(
            f"Replace {target} with {backup_file}?", default=False, err=True):
        fail("nothing restored")
    try:
        copied = put_back(backup_file, target)
    except ConfcallError as exc:
        fail(str(exc))
    if as_json:
        _print_json({"backup": str(copied.source), "database": str(copied.target),
                     "bytes": copied.size, "conferences": copied.conferences})
    else:
        _stdout().print(f"restored {copied.target} from {copied.source}: "
                        f"{copied.conferences} conference(s)", markup=False)



@app.command()
def migrate(
    source: Annotated[Path | None, typer.Option(
        "--from", help="The SQLite database to copy.", dir_okay=False,
        show_default="store.path")] = None,
    target: Annotated[str | None, typer.Option(
        "--to", help="The PostgreSQL database to copy it into: postgresql://…",
        show_default="store.url")] = None,
    config_path: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy a SQLite database into an empty PostgreSQL one, to serve it from replicas. Stop
    `confcall serve` first (it is refused while one uses the SQLite database); then set
    store.url (CONFCALL_STORE_URL) to the PostgreSQL database, and start the replicas.

    Compare `confcall history --json` before and after to check the copy.

    Example:

    \b
      confcall migrate --from confcall.db --to postgresql://confcall@db.internal/confcall
    """
    from confcall.config import shown_url

    config = _config(config_path, need_live=False)
    source = source or config.store_path
    url = target or config.store_url
    if not url:
        fail("--to: name the PostgreSQL database to copy into (postgresql://…), or set "
             "store.url")
    if not url.startswith(("postgresql://", "postgres://")):
        fail(f"--to: {shown_url(url)!r} is not a postgresql:// URL")
    from confcall.store.transfer import to_postgres

    try:
        moved = to_postgres(source, url)
    except ConfcallError as exc:
        fail(str(exc))
    if as_json:
        _print_json({"source": str(moved.source), "target": moved.target, "rows": moved.rows})
        return
    counted = ", ".join(f"{n} {table}" for table, n in moved.rows.items())
    _stdout().print(f"copied {moved.source} to {moved.target}: {counted}. Serve from it with "
                    "store.url (CONFCALL_STORE_URL).", markup=False, soft_wrap=True)


def _build_only_the_invoked_command(argv: list[str]) -> None:
    """typer builds every command's options before it runs one (a fifth of the start-up
    of `status --json`); when `argv` names the command, with only the options that go
    before a command (--config) ahead of it, build just that one. Anything else (--help,
    --version, a typo) is answered by the whole app."""
    from typer.main import get_command_name

    commands = {info.name or get_command_name(info.callback.__name__): info
                for info in app.registered_commands if info.callback is not None}
    at = 0
    while at < len(argv):
        if argv[at] in commands:
            app.registered_commands = [commands[argv[at]]]
            return
        if argv[at] in ("--config", "-c"):
            at += 2
        elif argv[at].startswith("--config="):
            at += 1
        else:
            return


def main() -> None:
    _build_only_the_invoked_command(sys.argv[1:])
    app()
