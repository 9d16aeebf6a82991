"""Shared test harness: the real confcall app (over HTTP) against a fake Bandwidth."""

from __future__ import annotations

import asyncio
import copy
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fake_bandwidth import ACCOUNT_ID, PASSWORD, USERNAME, FakeBandwidth, fixture

from confcall.app import create_app
from confcall.appkeys import OUTBOX, STORE
from confcall.auth import basic_auth
from confcall.config import Config, load_config
from confcall.store import Reader, open_reader

LINE = "+12015550100"  # the Bandwidth number (fictional-use range)
ORGANIZER = "+12015550101"
OTHER_ORGANIZER = "+12015550102"
STRANGER = "+12015550199"
APPLICATION_ID = "93de2206-9669-4e07-948d-329f4b722ee2"
VOICE_APPLICATION_ID = "04e88489-df02-4e34-a0ee-27a91849555f"


def invitees(count: int, start: int = 110) -> list[str]:
    return [f"+1201555{start + i:04d}" for i in range(count)]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def inbound_text(sender: str, text: str, line: str = LINE,
                 message_id: str | None = None) -> list[dict[str, Any]]:
    """Bandwidth's message-received example with our numbers in it."""
    body = fixture("messaging-callback.smsMessageReceived.json")
    event = body[0]
    event["to"] = line
    event["message"].update(
        {"from": sender, "to": [line], "owner": line, "text": text,
         "applicationId": APPLICATION_ID,
         "id": message_id or f"msg-{time.monotonic_ns()}"})
    return body


def voice_event(kind: str, **fields: Any) -> dict[str, Any]:
    """Bandwidth's voice-callback example of `kind` with some fields replaced."""
    body = fixture(f"voice-callback.{kind}.json")
    body.update(fields)
    return body


class Line:
    """A running confcall app and the fake Bandwidth behind it."""

    def __init__(self, client: TestClient[Any, Any], fake: FakeBandwidth, config: Config) -> None:
        self.client = client
        self.fake = fake
        self.config = config
        self._reader: Reader | None = None

    @property
    def store(self) -> Any:
        """The line's database, to read: on SQLite the serving store's own connection; on
        PostgreSQL a connection of the reader's own, as `confcall status` has."""
        if self.config.store_url is None:
            return self.client.app[STORE].reads  # type: ignore[index]
        if self._reader is None:
            self._reader = open_reader(self.config)
        return self._reader

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def wake(self) -> None:
        self.client.app[OUTBOX].wake()  # type: ignore[index]

    async def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        auth = self.config.server.callback_auth
        headers = kwargs.pop("headers", {})
        if auth and "Authorization" not in headers:
            headers["Authorization"] = basic_auth(*auth)
        return await self.client.post(path, json=body, headers=headers, **kwargs)

    async def text(self, sender: str, text: str, **kwargs: Any) -> Any:
        answer = await self.post("/callbacks/messaging", inbound_text(sender, text, **kwargs))
        assert answer.status == 200, await answer.text()
        return answer

    async def call(self, caller: str, call_id: str) -> str:
        answer = await self.post("/callbacks/voice/initiate", voice_event(
            "initiate", **{"from": caller, "to": LINE, "callId": call_id}))
        assert answer.status == 200
        assert answer.content_type == "application/xml"
        return str(await answer.text())

    async def conference(self, kind: str, name: str, bandwidth_id: str = "conf-1",
                         when: str | None = None, **fields: Any) -> None:
        body = voice_event(kind, conferenceId=bandwidth_id, name=name, tag=name, **fields)
        if when:
            body["eventTime"] = when
        answer = await self.post("/callbacks/voice/conference", body)
        assert answer.status == 204, await answer.text()

    async def join(self, name: str, caller: str, call_id: str, when: str,
                   bandwidth_id: str = "conf-1") -> None:
        await self.conference("conferenceMemberJoin", name, bandwidth_id, when,
                              callId=call_id, **{"from": caller, "to": LINE})

    async def leave(self, name: str, caller: str, call_id: str, when: str,
                    bandwidth_id: str = "conf-1") -> None:
        await self.conference("conferenceMemberExit", name, bandwidth_id, when,
                              callId=call_id, **{"from": caller, "to": LINE})

    async def settle(self, timeout: float = 5.0) -> None:
        """Wait until the outbox has nothing due right now."""
        await wait_for(lambda: not self.store.due(time.time() + 0.001, 1), timeout)
        await asyncio.sleep(0.05)

    def active(self, organizer: str = ORGANIZER) -> Any:
        return self.store.active_conference(organizer)


async def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees a confcall.toml or environment of the machine it runs on."""
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith(("CONFCALL_", "BANDWIDTH_", "BW_")) or name == "USER_PHONE_NUMBER":
            monkeypatch.delenv(name)


# --- the stores -----------------------------------------------------------------------------
# Tests marked `both_stores` (a module's `pytestmark`) run once on SQLite and once on
# PostgreSQL; `sqlite_only` keeps one of them to SQLite (it pokes at SQLite on purpose).

STORES = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "both_stores: run on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only: SQLite's own behaviour, not a store's")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if ("store_kind" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_stores") is not None
            and metafunc.definition.get_closest_marker("sqlite_only") is None):
        metafunc.parametrize("store_kind", STORES, indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Any]:
    """One throwaway PostgreSQL server for the session (tests/postgres_cluster.py). Where
    PostgreSQL is missing the tests that need it are skipped, saying why; in CI
    (CI=true) they fail."""
    from postgres_cluster import Cluster, Unavailable

    cluster: Cluster | None = None
    try:
        cluster = Cluster()
        cluster.start()
    except Unavailable as exc:
        if cluster is not None:
            cluster.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is needed in CI: {exc}")
        pytest.skip(f"no PostgreSQL to test against: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store the line runs on: SQLite unless the test is parametrized over both."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def store_settings(store_kind: str, tmp_path: Path,
                   request: pytest.FixtureRequest) -> dict[str, str]:
    """The configuration of the test's database: a new SQLite file, or a new PostgreSQL
    database holding the schema."""
    if store_kind == "postgresql":
        return {"store.url": request.getfixturevalue("postgres_cluster").database()}
    return {"store.path": str(tmp_path / "confcall.db")}


@pytest.fixture
async def fake(aiohttp_server: Any) -> AsyncIterator[FakeBandwidth]:
    bandwidth = FakeBandwidth()
    bandwidth.server = await aiohttp_server(bandwidth.app())
    yield bandwidth
    assert bandwidth.rejected == [], "confcall sent requests that break Bandwidth's schema"


def live_config(tmp_path: Path, fake: FakeBandwidth, store: dict[str, str] | None = None,
                **overrides: Any) -> Config:
    values: dict[str, Any] = {
        "bandwidth.account_id": ACCOUNT_ID,
        "bandwidth.username": USERNAME,
        "bandwidth.password": PASSWORD,
        "bandwidth.phone_number": LINE,
        "bandwidth.voice_application_id": VOICE_APPLICATION_ID,
        "organizers.numbers": [ORGANIZER, OTHER_ORGANIZER],
        "server.public_url": "https://confcall.example.com",
        **(store or {"store.path": str(tmp_path / "confcall.db")}),
        "outbox.max_retry_delay": 1,
        "outbox.request_timeout": 2,
        **fake.urls(),
    }
    values.update(overrides)
    if "store.path" in overrides:  # a test's own SQLite file, or PostgreSQL database
        values.pop("store.url", None)
    if "store.url" in overrides:
        values.pop("store.path", None)
    return load_config(None, {}, values)


StartLine = Callable[..., Awaitable[Line]]


def check_invariants(store: Any) -> None:
    """What must hold in the database whatever callbacks arrived, in whatever order."""
    db = store.db
    assert not db.execute(
        "SELECT organizer FROM conferences WHERE status = 'active'"
        " GROUP BY organizer HAVING COUNT(*) > 1").fetchall(), "two active for one organizer"
    assert not db.execute(
        "SELECT id FROM conferences WHERE status = 'ended' AND ended_at IS NULL").fetchall()
    assert not db.execute(
        "SELECT m.call_id FROM members m JOIN conferences c ON c.id = m.conference_id"
        " WHERE c.status = 'ended' AND m.left_at IS NULL").fetchall(), "on the call after the end"
    assert not db.execute(
        "SELECT call_id FROM members WHERE left_at < joined_at").fetchall()
    assert not db.execute(
        "SELECT id FROM outbox WHERE kind = 'text' AND (recipients IS NULL OR recipients = '[]'"
        " OR body IS NULL)").fetchall()
    assert not db.execute(
        "SELECT id FROM outbox WHERE status != 'pending' AND finished_at IS NULL").fetchall()


@pytest.fixture
async def start_line(tmp_path: Path, fake: FakeBandwidth, aiohttp_client: Any,
                     store_settings: dict[str, str]) -> AsyncIterator[StartLine]:
    """Start the confcall app (config overrides as keyword arguments, dotted keys with
    `__` for `.`) against the fake Bandwidth. Each test ends with the invariants checked."""
    started: list[Line] = []

    async def start(clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                    **overrides: Any) -> Line:
        dotted = {k.replace("__", "."): v for k, v in overrides.items()}
        config = live_config(tmp_path, fake, store_settings, **dotted)
        client = await aiohttp_client(create_app(config, clock=clock, rng=rng))
        started.append(Line(client, fake, config))
        return started[-1]

    yield start
    for line in started:
        line.close()
        reader = open_reader(line.config)
        try:
            check_invariants(reader)
        finally:
            reader.close()


@pytest.fixture
async def line(start_line: StartLine) -> Line:
    return await start_line()


@pytest.fixture
def examples() -> Iterator[Callable[[str], Any]]:
    yield lambda name: copy.deepcopy(fixture(name))
