"""A paging world whose PagerDuty and Opsgenie also answer who is on call.

The people of `tests.paging_fixtures` (alice, bob, carol, dan, erin by email; dana declares),
FakePagerDuty for pages, FakePagerDutyREST for schedules, and one FakeOpsgenieOnCall for both
alerts and schedules. `order` notes, across all three, which request arrived when.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from bot.core.clock import FakeClock
from bot.core.playbooks import Playbook, load_playbook
from bot.emulator import SlackEmulator
from tests.conftest import BotHarness
from tests.oncall.conftest import GENIE_KEY, PD_TOKEN
from tests.oncall.fakes import FakeOpsgenieOnCall, FakePagerDutyREST
from tests.pagers.fakes import Received
from tests.paging_fixtures import PD_DB_KEY, OrderedPagerDuty, PagingWorld


@dataclass
class NotedREST(FakePagerDutyREST):
    order: list[str] = field(default_factory=list)

    async def _record(self, request: web.Request) -> Received:
        self.order.append(f"pd-rest {request.path}")
        return await super()._record(request)


@dataclass
class NotedEvents(OrderedPagerDuty):
    order: list[str] = field(default_factory=list)

    async def _record(self, request: web.Request) -> Received:
        self.order.append(f"pd-events {request.path}")
        return await super()._record(request)


@dataclass
class OnCallWorld(PagingWorld):
    rest: NotedREST = field(default_factory=NotedREST)
    og_oncall: FakeOpsgenieOnCall = field(default_factory=FakeOpsgenieOnCall)
    order: list[str] = field(default_factory=list)

    def playbook(self, text: str, name: str = "oncall") -> Playbook:
        return load_playbook(text, filename=f"{name}.yaml")

    async def start_with(self, *playbooks: Playbook, **environ: str) -> BotHarness:
        env = {
            "PD_DB_KEY": PD_DB_KEY,
            "PAGERDUTY_API_TOKEN": PD_TOKEN,
            "OPSGENIE_API_KEY": GENIE_KEY,
            **environ,
        }
        return await self.start(
            playbooks=list(playbooks),
            environ=env,
            extra_settings={"PAGERDUTY_API_URL": self.rest.base_url},
        )

    def metric(self, name: str, **labels: str) -> int:
        return int(self.harness.services.metrics.value(name, **labels) or 0)


@asynccontextmanager
async def oncall_world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[OnCallWorld]:
    people = {
        name: emulator.add_user(name, email=f"{name}@example.com")
        for name in ("alice", "bob", "carol", "dan", "erin", "dana")
    }
    group = emulator.add_usergroup("dba-oncall", [people["dan"], people["erin"]])
    order: list[str] = []
    pd = NotedEvents(emulator=emulator, order=order)
    rest = NotedREST(token=PD_TOKEN, order=order)
    og = FakeOpsgenieOnCall(api_key=GENIE_KEY)
    for name in (*people, "olive"):
        rest.add_user(name, email=f"{name}@example.com")
    for fake in (pd, rest, og):
        await fake.start()
    world = OnCallWorld(
        emu=emulator,
        clock=clock,
        pd=pd,
        og=og,
        people=people,
        group=group,
        sqlite_url=sqlite_url,
        rest=rest,
        og_oncall=og,
        order=order,
    )
    try:
        yield world
    finally:
        try:
            await world.stop()
        finally:
            for fake in (pd, rest, og):
                await fake.stop()
