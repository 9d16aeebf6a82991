"""Running the web application: listen, say so, serve until SIGTERM or SIGINT, stop
gracefully; with the limits that keep slow, idle and piled-up connections from taking the
server down."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from confcall.app import create_app
from confcall.config import LOOPBACK_HOSTS, Config
from confcall.errors import ConfcallError

log = logging.getLogger("confcall.serve")


def run(config: Config, ready: Callable[[], None] = lambda: None) -> None:
    """Serve until SIGTERM or SIGINT, on uvloop where it is installed (a default dependency
    on Linux and macOS: it carries the same webhooks on a fraction of the work of asyncio's
    own loop), else on asyncio's."""
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # Windows, or installed without it
        pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(config, ready))


REFUSALS_LOGGED_EVERY = 10.0
SHUTDOWN_GRACE = 2.0
GC_YOUNG_THRESHOLD = 10_000  # the collector's first threshold while serving; see serve()


def _raise_file_limit(wanted: int) -> int:
    """Raise this process's open-file limit towards `wanted` (as far as the hard limit
    allows); the soft limit it ends with."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft) if soft != resource.RLIM_INFINITY else wanted


class ConnectionCap:
    """At most `limit` connections at once: one more is closed as soon as it is accepted,
    so that a crowd of idle or slow connections cannot use up the process's files (then
    asyncio can accept nothing, not even Bandwidth) . Refusals are logged once every
    REFUSALS_LOGGED_EVERY seconds, with their count."""

    def __init__(self, server: web.Server, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._told = 0.0
        made, lost = server.connection_made, server.connection_lost

        # aiohttp's Server has no hook for this: wrap its two bookkeeping methods
        def connection_made(handler: Any, transport: Any) -> None:
            self.open += 1
            made(handler, transport)
            if self.open > self.limit:
                self.refused += 1
                # not at once: the handler's task has yet to start, and would find its
                # connection gone (an AssertionError logged for every one refused)
                asyncio.get_running_loop().call_soon(transport.close)
                self._tell()

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.open -= 1
            lost(handler, exc)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _tell(self) -> None:
        now = time.monotonic()
        if now - self._told >= REFUSALS_LOGGED_EVERY:
            log.warning("%d connection(s) closed at once: %d are open, the most this server "
                        "keeps (slow or idle clients?)", self.refused, self.limit)
            self._told = now
            self.refused = 0


async def serve(config: Config, ready: Callable[[], None] = lambda: None) -> None:
    """Start the app and listen; only then call `ready` (which prints the banner). Serve
    until SIGTERM or SIGINT, then stop gracefully: the requests and the sends under way
    get SHUTDOWN_GRACE seconds, at the same time."""
    if (config.sandbox and config.server.callback_auth is None
            and config.server.host not in LOOPBACK_HOSTS):
        # anyone who reaches it could read every text at /sandbox/messages and post
        # callbacks: beyond this machine, the sandbox wants the callback credentials
        raise ConfcallError(
            f"the sandbox listens on {config.server.host} (beyond this machine) only with "
            "callback credentials: set server.callback_username and server.callback_password,"
            " or listen on 127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    limits = config.server
    files = _raise_file_limit(limits.max_connections + 256)
    # A connection must send a whole request's headers within idle_timeout of opening (or
    # of its last answer), or it is closed: aiohttp's keep-alive timer also covers a
    # request whose headers never end. Bandwidth sends each callback at once.
    runner = web.AppRunner(create_app(config), access_log=None,
                           shutdown_timeout=SHUTDOWN_GRACE,
                           keepalive_timeout=limits.idle_timeout)
    began = time.monotonic()
    try:
        await runner.setup()  # opens the database: a second server on it stops here
        assert runner.server is not None
        ConnectionCap(runner.server, min(limits.max_connections, files - 128))
        site = web.TCPSite(runner, config.server.host, config.server.port)
        try:
            await site.start()
        except OSError as exc:
            where = config.server.listen_url.removeprefix("http://")
            raise ConfcallError(f"cannot listen on {where}: {_os_reason(exc)}") from None
        ready()
        log.info("listening on %s (%s mode, %s event loop)", config.server.listen_url,
                 "sandbox" if config.sandbox else "live", _loop_name())
        # What start-up made (modules, config, the app) lives as long as the process:
        # take it out of the collector's sight, so that a full collection while serving
        # scans only what serving made, and answers are not held up by scanning it
        gc.freeze()
        # The collector runs each time the tracked objects grow by its first threshold
        # (700), and then scans every young object alive. A burst of webhooks waiting
        # on one commit keeps thousands alive at once, so at 700 it ran several times per
        # burst, scanning them all, for nothing: they are freed by reference counting
        # once answered. Serving makes little cyclic garbage (a closed connection's few
        # objects), so it is collected a little later, not at a cost on every burst.
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        await stop.wait()
        log.info("stopping: finishing the requests and sends under way")
    finally:
        await runner.cleanup()
    log.info("stopped after %.0f s", time.monotonic() - began)


def _loop_name() -> str:
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith(
        "uvloop") else "asyncio"


def _os_reason(exc: OSError) -> str:
    """Why a bind failed, as the system says it ("Address already in use")."""
    import socket

    if isinstance(exc, socket.gaierror) or not exc.errno:
        return exc.strerror or str(exc)
    return os.strerror(exc.errno)
