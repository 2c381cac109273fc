"""The services a use case may need: built once per process by the wiring, passed down."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.core.clock import Clock, SystemClock
from bot.core.playbooks import Playbook
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.gate import WriteGate
from bot.effect_runner import EffectRunner
from bot.inbox import Inbox
from bot.metrics import Metrics
from bot.oncall.cache import OnCallCache
from bot.pagers.retry import RetryPolicy
from bot.slack.client import WebClient, make_slack_client
from bot.slack.directory import SlackDirectory
from bot.tasks import AckFirst, Inflight, KeyedLocks
from bot.timers import Timers


@dataclass
class Services:
    """Everything a use case may need, built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    slack: WebClient
    clock: Clock
    directory: SlackDirectory
    effects: EffectRunner
    inbox: Inbox
    metrics: Metrics
    timers: Timers
    http: httpx.AsyncClient
    playbooks: tuple[Playbook, ...] = ()
    inflight: Inflight = field(default_factory=Inflight)
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    ack_first: AckFirst = field(default_factory=AckFirst)
    # Where playbooks' `*_env` secrets are read, and how patiently pagers retry.
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    pager_retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Who is on call per PagerDuty/Opsgenie schedule, kept for a minute on `clock`.
    oncall_cache: OnCallCache = field(default_factory=OnCallCache)

    def playbook(self, name: str | None) -> Playbook | None:
        """The loaded playbook of that name."""
        return next((p for p in self.playbooks if p.name == name), None)

    async def settle(self, seconds: float = 60.0) -> None:
        """Run what is due on the injected clock until nothing is left: for demos and tests.

        Work after acks, then side effects due now, then timers due now, until all are quiet.
        """
        async with asyncio.timeout(seconds):
            while True:
                await self.inflight.wait(seconds)
                await self.inbox.flush()
                ran = await self.effects.run_due()
                ran += await self.timers.run_due(self.clock.now())
                if ran == 0 and not len(self.inflight):
                    return

    async def aclose(self) -> None:
        """Stop the background work and release connections; safe to call twice."""
        await self.inbox.stop()
        await self.effects.stop()
        await self.timers.stop()
        await self.http.aclose()
        await self.slack.aclose()
        await self.engine.dispose()


def build_services(
    settings: Settings, *, clock: Clock | None = None, playbooks: Sequence[Playbook] = ()
) -> Services:
    """Engine, sessions and the Slack client from the settings; nothing is contacted yet."""
    engine = make_engine(settings.DATABASE_URL)
    # SQLite has one writer: this process's write transactions take turns (bot/db/gate.py).
    gate = WriteGate(enabled=engine.dialect.name == "sqlite")
    sessions = make_sessionmaker(engine, gate=gate)
    clock = clock or SystemClock()
    metrics = Metrics()
    ack_first = AckFirst()  # requests' answers before background work (bot/tasks.py)
    # Commands that never call Slack (db upgrade, postmortem) run without a token.
    token = settings.SLACK_BOT_TOKEN.get_secret_value() if settings.SLACK_BOT_TOKEN else None
    slack = make_slack_client(token=token, base_url=settings.SLACK_API_URL, metrics=metrics)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        slack=slack,
        clock=clock,
        directory=SlackDirectory(slack),
        effects=EffectRunner(sessions=sessions, clock=clock, metrics=metrics, ack_first=ack_first),
        inbox=Inbox(sessions=sessions, clock=clock, gate=gate),
        metrics=metrics,
        timers=Timers(
            database_url=settings.DATABASE_URL, sessions=sessions, clock=clock, gate=gate
        ),
        http=httpx.AsyncClient(timeout=httpx.Timeout(10.0)),
        playbooks=tuple(playbooks),
        ack_first=ack_first,
    )
