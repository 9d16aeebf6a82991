"""Typed keys for what the application holds (shared by app, webhooks and sandbox)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import ClientSession, web

from confcall.conference import Rules
from confcall.config import Config
from confcall.store import Store

if TYPE_CHECKING:
    from confcall.bandwidth import BandwidthClient
    from confcall.outbox import Outbox
    from confcall.sandbox import Sandbox

CONFIG: web.AppKey[Config] = web.AppKey("config")
RULES: web.AppKey[Rules] = web.AppKey("rules")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
STORE: web.AppKey[Store] = web.AppKey("store")
SESSION: web.AppKey[ClientSession] = web.AppKey("session")
CLIENT: web.AppKey[BandwidthClient] = web.AppKey("client")
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox")
SANDBOX: web.AppKey[Sandbox] = web.AppKey("sandbox")
RANDOM: web.AppKey[random.Random] = web.AppKey("random")
# the callback URL of conference events, which every BXML join names: made once
CONFERENCE_EVENTS_URL: web.AppKey[str] = web.AppKey("conference_events_url")
