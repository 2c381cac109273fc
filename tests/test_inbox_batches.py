"""The inbox's group commit: requests that arrive together share one INSERT, and each still
gets the ticket of its own row (the work after the ack marks that row, and no other, done)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.clock import FakeClock
from bot.db.engine import make_sessionmaker
from bot.db.gate import WriteGate
from bot.db.models import InboxRequest
from bot.inbox import Inbox


async def test_requests_committed_together_each_get_their_own_row(engine: AsyncEngine) -> None:
    gate = WriteGate(enabled=engine.dialect.name == "sqlite")
    sessions = make_sessionmaker(engine, gate=gate)
    inbox = Inbox(sessions=sessions, clock=FakeClock(datetime(2026, 11, 1, tzinfo=UTC)), gate=gate)
    bodies = [f"text=note+{i}" for i in range(60)]
    # Arriving together: all but the first wait for one commit, and share the next.
    tickets = await asyncio.gather(
        *(inbox.record(source="slack", content_type="form", body=b) for b in bodies)
    )
    async with sessions() as session:
        rows = {r.id: r.body for r in (await session.execute(select(InboxRequest))).scalars()}
    assert len(rows) == len(bodies)
    assert [rows[t.id] for t in tickets] == bodies
    await inbox.stop()
