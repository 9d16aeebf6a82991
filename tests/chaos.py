"""Crash safety: full conference flows against `confcall serve` while it is SIGKILLed at
random moments and restarted, with every callback re-delivered until it gets a 2xx, as
Bandwidth does. Afterwards: which texts reached the fake Bandwidth, how many were lost, and
where the duplicates came from."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import phonenumbers
from conftest import inbound_text, voice_event
from fake_bandwidth import FakeBandwidth
from served import Served

from confcall.conference import invitation

LINE = "+12015550100"
ORGANIZERS = ["+12015550101", "+12015550102", "+12015550103"]


def _numbers() -> list[str]:
    """Valid, distinct numbers for the invitees of every flow."""
    found = []
    for suffix in range(1000, 10000):
        number = f"+1201555{suffix:04d}"
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            found.append(number)
    return found


NUMBERS = _numbers()


@dataclass
class Report:
    kills: int = 0
    flows: int = 0
    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicates: int = 0  # extra copies of a text, all with the same outbox tag: the window
    replay_duplicates: int = 0  # extra copies with different tags: a callback acted on twice
    missing: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"kills: {self.kills} | flows: {self.flows} | texts expected: {self.expected}"
                f" | delivered: {self.delivered} | lost: {self.lost} | duplicates: "
                f"{self.duplicates} (from replayed callbacks: {self.replay_duplicates})")


@dataclass
class Flow:
    index: int
    organizer: str
    invitees: list[str]
    name: str | None = None
    done: bool = False

    @property
    def closing(self) -> str:
        return f"flow {self.index} is over, thanks"

    def expected(self) -> list[tuple[tuple[str, ...], str, str]]:
        """The texts this flow must cause: (recipients, opening, something it contains).
        The confirmation and the recap are matched by their opening and the first invitee:
        every flow of an organizer sends one, and the recap's durations vary."""
        first = self.invitees[0]
        texts = [((n,), invitation(self.organizer, LINE), "") for n in self.invitees]
        texts.append(((self.organizer,), "Conference started.", first))
        texts.append((tuple(self.invitees), self.closing, ""))
        texts.append(((self.organizer,), "Conference ended", first))
        return texts


class Driver:
    """Plays Bandwidth's side of the flows: every callback is posted until it gets a 2xx.
    With several replicas it plays a load balancer too: each post goes to one at random,
    some are delivered again to another (a replay), and some to all at the same moment."""

    def __init__(self, served: Served, fake: FakeBandwidth, session: aiohttp.ClientSession,
                 replicas: list[Served] | None = None, seed: int = 0):
        self.served = served
        self.fake = fake
        self.session = session
        self.replicas = replicas or [served]
        self.chance = random.Random(seed)

    async def deliver(self, path: str, body: Any) -> str:
        if len(self.replicas) > 1 and self.chance.random() < 0.15:
            answers = await asyncio.gather(*(self._post(r, path, body) for r in self.replicas))
            if any(a is not None for a in answers):
                return next(a for a in answers if a is not None)
        while True:
            answer = await self._post(self.chance.choice(self.replicas), path, body)
            if answer is not None:
                if len(self.replicas) > 1 and self.chance.random() < 0.15:
                    await self._post(self.chance.choice(self.replicas), path, body)  # a replay
                return answer
            await asyncio.sleep(0.05)

    async def _post(self, served: Served, path: str, body: Any) -> str | None:
        """The answer, or None when there was none or a 5xx (Bandwidth delivers it again)."""
        try:
            async with self.session.post(served.url + path, json=body,
                                         timeout=aiohttp.ClientTimeout(total=5)) as answer:
                if answer.status < 300:
                    return await answer.text()
                if answer.status < 500:
                    raise AssertionError(f"{path} answered {answer.status}")
        except (TimeoutError, aiohttp.ClientError):
            pass  # not answered: Bandwidth delivers it again
        return None

    async def wait(self, predicate: Any, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError("the flow did not progress")
            await asyncio.sleep(0.05)

    async def run(self, flow: Flow) -> None:
        start = inbound_text(flow.organizer, ", ".join(flow.invitees),
                             message_id=f"start-{flow.index}")
        await self.deliver("/callbacks/messaging", start)
        first = flow.invitees[0]
        if len(self.replicas) > 1:  # invitees call once invited, as people do
            await self.wait(lambda: any(t["to"] == [first] for t in self.fake.texts))
        calls = [f"c-{flow.index}-{k}" for k in range(3)]
        bxml = await self.deliver("/callbacks/voice/initiate", voice_event(
            "initiate", **{"from": first, "to": LINE, "callId": calls[0]}))
        flow.name = bxml.split('tag="', 1)[1].split('"', 1)[0]
        bandwidth_id = f"conf-{flow.index}"
        when = "2026-11-25T10:00:00.000Z"
        created = voice_event("conferenceCreated", conferenceId=bandwidth_id, name=flow.name,
                              tag=flow.name, eventTime=when)
        await self.deliver("/callbacks/voice/conference", created)
        members = list(zip(calls, flow.invitees[:3], strict=True))
        for k, (call, number) in enumerate(members):
            join = voice_event("conferenceMemberJoin", conferenceId=bandwidth_id,
                               name=flow.name, tag=flow.name, callId=call,
                               eventTime=f"2026-11-25T10:00:0{k}.000Z",
                               **{"from": number, "to": LINE})
            await self.deliver("/callbacks/voice/conference", join)
        end = inbound_text(flow.organizer, flow.closing, message_id=f"end-{flow.index}")
        await self.deliver("/callbacks/messaging", end)
        await self.wait(lambda: bandwidth_id in self.fake.completed)
        for k, (call, number) in enumerate(members):
            leave = voice_event("conferenceMemberExit", conferenceId=bandwidth_id,
                                name=flow.name, tag=flow.name, callId=call,
                                eventTime=f"2026-11-25T10:05:0{k}.000Z",
                                **{"from": number, "to": LINE})
            await self.deliver("/callbacks/voice/conference", leave)
        completed = voice_event("conferenceCompleted", conferenceId=bandwidth_id,
                                name=flow.name, tag=flow.name,
                                eventTime="2026-11-25T10:05:09.000Z")
        await self.deliver("/callbacks/voice/conference", completed)
        await self.wait(lambda: any(
            t["to"] == [flow.organizer] and t["text"].startswith("Conference ended")
            and first in t["text"] for t in self.fake.texts))
        flow.done = True


def tally(flows: list[Flow], texts: list[dict[str, Any]], report: Report) -> None:
    for flow in flows:
        for recipients, text, within in flow.expected():
            copies = [t for t in texts if tuple(t["to"]) == recipients
                      and t["text"].startswith(text) and within in t["text"]]
            report.expected += 1
            if not copies:
                report.lost += 1
                report.missing.append(f"flow {flow.index}: {text[:30]} to {recipients[0]}")
                continue
            report.delivered += 1
            tags = Counter(t["tag"] for t in copies)
            report.duplicates += len(copies) - len(tags)
            report.replay_duplicates += len(tags) - 1


async def run(fake: FakeBandwidth, workdir: Path, *, kills: int, flows: int = 3,
              seed: int = 0, parallel: int = 3,
              gap: tuple[float, float] = (0.05, 0.5), store_url: str | None = None,
              replicas: int = 1, **settings: str) -> Report:
    """Run at least `flows` flows, `parallel` at a time, while killing the server `kills`
    times at random moments `gap` seconds apart. With `store_url` (PostgreSQL) and
    `replicas`, that many servers share it; each kill takes one at random while the others
    serve, and it is started again."""
    chance = random.Random(seed)
    servers = [Served(workdir, fake, ORGANIZERS[:parallel], store_url=store_url,
                      name="serve" if replicas == 1 else f"replica-{i}", **settings)
               for i in range(replicas)]
    served = servers[0]
    report = Report()
    await asyncio.gather(*(s.start() for s in servers))
    all_flows: list[Flow] = []
    try:
        async with aiohttp.ClientSession() as session:
            driver = Driver(served, fake, session, servers, seed)
            killing = True

            async def organizer_loop(organizer: str) -> None:
                while killing or sum(f.organizer == organizer for f in all_flows) < (
                        flows + parallel - 1) // parallel:
                    index = len(all_flows)
                    flow = Flow(index, organizer, NUMBERS[index * 10:index * 10 + 10])
                    all_flows.append(flow)
                    await driver.run(flow)

            loops = [asyncio.create_task(organizer_loop(o)) for o in ORGANIZERS[:parallel]]
            for _ in range(kills):
                await asyncio.sleep(chance.uniform(*gap))
                victim = chance.choice(servers)
                await victim.kill()
                report.kills += 1
                await victim.start()
            killing = False
            await asyncio.gather(*loops)
    finally:
        for each in servers:
            await each.stop()
    report.flows = len(all_flows)
    tally(all_flows, fake.texts, report)
    return report
