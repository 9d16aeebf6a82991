"""The aiohttp application: create_app(config) wires the store, the outbox and the routes."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from confcall import webhooks
from confcall.appkeys import (
    CLIENT,
    CLOCK,
    CONFIG,
    OUTBOX,
    RANDOM,
    RULES,
    SESSION,
    STORE,
)
from confcall.bandwidth import BandwidthClient
from confcall.conference import Rules
from confcall.config import Config
from confcall.outbox import Outbox
from confcall.store import open_store

__all__ = ["create_app"]

DRAIN_GRACE = 2.0  # seconds the sends under way get to finish when the server stops


async def _store(app: web.Application) -> AsyncIterator[None]:
    store = await open_store(app[CONFIG])
    app[STORE] = store
    yield
    await store.aclose()


async def _outbox(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    async with aiohttp.ClientSession(
        headers={"User-Agent": "confcall"}, raise_for_status=False
    ) as session:
        app[SESSION] = session
        app[CLIENT] = BandwidthClient(session, config.bandwidth, config.request_timeout)
        outbox = Outbox(app[STORE], app[CLIENT], config, app[RULES], app[CLOCK], app[RANDOM])
        app[OUTBOX] = outbox
        outbox.start()

        async def drain(app: web.Application) -> None:
            # on shutdown, while the requests under way finish: SIGTERM waits for both at
            # once, not one after the other
            outbox.begin_closing(grace=DRAIN_GRACE)

        app.on_shutdown.append(drain)
        yield
        await outbox.close(grace=DRAIN_GRACE)


def create_app(config: Config, *, clock: Callable[[], float] = time.time,
               rng: random.Random | None = None) -> web.Application:
    """The confcall web application for `config`; `clock` and `rng` (the outbox's retry
    jitter) are injectable for tests."""
    # no middleware on the live path: each route is guarded on its own (webhooks.guard)
    middlewares = []
    if config.sandbox:
        from confcall import sandbox

        middlewares.append(sandbox.call_engine)
    app = web.Application(client_max_size=webhooks.MAX_BODY, middlewares=middlewares)
    app[CONFIG] = config
    app[CLOCK] = clock
    app[RANDOM] = rng or random.Random()
    app[RULES] = Rules(
        line=config.bandwidth.phone_number,
        organizers=frozenset(config.organizers),
        max_invites=config.max_invites,
        region=config.default_region,
        end_when_organizer_leaves=config.end_when_organizer_leaves,
        recording=config.recording,
        public_url=config.server.public_url,
        link_days=config.link_days,
    )
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_outbox)
    webhooks.add_routes(app)
    if config.sandbox:
        sandbox.install(app)
    webhooks.add_no_route(app, config)
    return app
