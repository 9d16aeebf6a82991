"""Hostile input: arbitrary JSON and mutated real payloads on every route never get a 5xx,
and the stored state stays valid."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from conftest import STORES, check_invariants, inbound_text
from fake_bandwidth import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confcall.app import create_app
from confcall.config import SANDBOX_ORGANIZER, SANDBOX_PHONE_NUMBER, load_config
from confcall.store import open_reader

ROUTES = ["/callbacks/messaging", "/callbacks/voice/initiate", "/callbacks/voice/conference",
          "/callbacks/voice/status"]
EXAMPLES = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*callback*.json"))]


class ThreadedServer:
    """The real app on its own event loop in a thread, so that hypothesis (which is
    synchronous) can post to it."""

    def __init__(self, store: dict[str, str]) -> None:
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = load_config(None, {}, {"server.port": self.port, **store})
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(create_app(self.config), handle_signals=False)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def post(self, route: str, body: bytes, content_type: str = "application/json") -> int:
        request = urllib.request.Request(self.url + route, data=body,
                                         headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return int(error.code)


@pytest.fixture(scope="module", params=STORES)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    """The sandbox app on each store in turn; the invariants checked after every test."""
    if request.param == "postgresql":
        store = {"store.url": request.getfixturevalue("postgres_cluster").database()}
    else:
        store = {"store.path": str(tmp_path_factory.mktemp("hostile") / "confcall.db")}
    with ThreadedServer(store) as running:
        yield running
        reader = open_reader(running.config)
        try:
            check_invariants(reader)
        finally:
            reader.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=25,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def mutated_examples(draw: st.DrawFn) -> Any:
    """One of Bandwidth's example payloads with a few fields deleted or replaced."""
    body = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(body) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values, route=st.sampled_from(ROUTES))
def test_arbitrary_json_never_gets_a_5xx(server: ThreadedServer, body: Any, route: str) -> None:
    status = server.post(route, json.dumps(body).encode())
    assert 200 <= status < 500


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=mutated_examples(), route=st.sampled_from(ROUTES))
def test_mutated_real_payloads_never_get_a_5xx(server: ThreadedServer, body: Any,
                                               route: str) -> None:
    status = server.post(route, json.dumps(body).encode())
    assert 200 <= status < 500


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=300), route=st.sampled_from(ROUTES),
       content_type=st.sampled_from(["application/json", "text/plain", "", "application/xml"]))
def test_arbitrary_bytes_never_get_a_5xx(server: ThreadedServer, raw: bytes, route: str,
                                         content_type: str) -> None:
    assert 200 <= server.post(route, raw, content_type) < 500


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=400))
def test_arbitrary_texts_from_the_organizer_never_get_a_5xx(server: ThreadedServer,
                                                            text: str) -> None:
    body = inbound_text(SANDBOX_ORGANIZER, text, line=SANDBOX_PHONE_NUMBER)
    assert server.post("/callbacks/messaging", json.dumps(body).encode()) == 200


def test_deeply_nested_json_is_400(server: ThreadedServer) -> None:
    assert server.post("/callbacks/voice/status", b"[" * 100_000 + b"]" * 100_000) in (400, 413)
    assert server.post("/callbacks/messaging", b'{"a":' * 3000 + b"1" + b"}" * 3000) == 400


