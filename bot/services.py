"""The services a use case may need: built once per process by the wiring, passed down."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.core.clock import Clock, SystemClock
from bot.db.engine import make_engine, make_sessionmaker
from bot.metrics import Metrics
from bot.outbox import EffectRunner
from bot.slack.client import make_slack_client
from bot.slack.directory import SlackDirectory
from bot.tasks import Inflight


@dataclass
class Services:
    """Everything a use case may need, built once per process."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    slack: AsyncWebClient
    clock: Clock
    directory: SlackDirectory
    effects: EffectRunner
    metrics: Metrics
    inflight: Inflight = field(default_factory=Inflight)

    async def settle(self, seconds: float = 60.0) -> None:
        """Wait until the work after every ack, and the side effects now due, are done."""
        async with asyncio.timeout(seconds):
            while True:
                await self.inflight.wait(seconds)
                if await self.effects.run_due() == 0 and not len(self.inflight):
                    return

    async def aclose(self) -> None:
        """Stop the runner and release connections; safe to call twice."""
        await self.effects.stop()
        await self.engine.dispose()


def build_services(settings: Settings, *, clock: Clock | None = None) -> Services:
    """Engine, sessions and the Slack client from the settings; nothing is contacted yet."""
    engine = make_engine(settings.DATABASE_URL)
    sessions = make_sessionmaker(engine)
    clock = clock or SystemClock()
    metrics = Metrics()
    # Commands that never call Slack (db upgrade, postmortem) run without a token.
    token = settings.SLACK_BOT_TOKEN.get_secret_value() if settings.SLACK_BOT_TOKEN else None
    slack = make_slack_client(token=token, base_url=settings.SLACK_API_URL)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        slack=slack,
        clock=clock,
        directory=SlackDirectory(slack),
        effects=EffectRunner(sessions=sessions, clock=clock, metrics=metrics),
        metrics=metrics,
    )
