"""What the benchmarks share with the tests: the fake Bandwidth and the served process."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import chaos
from aiohttp.test_utils import TestServer
from fake_bandwidth import FakeBandwidth
from served import Served

__all__ = ["FakeBandwidth", "Served", "chaos", "fake_bandwidth"]


@asynccontextmanager
async def fake_bandwidth() -> AsyncIterator[FakeBandwidth]:
    """A fake Bandwidth API on a free loopback port."""
    fake = FakeBandwidth()
    fake.server = TestServer(fake.app())
    await fake.server.start_server()
    try:
        yield fake
    finally:
        await fake.server.close()
