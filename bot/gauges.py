"""Gauges read from the database when Prometheus scrapes: what is true now, on every replica."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import col

from bot.core.enums import Severity, Status
from bot.db.models import SCHEDULER_JOBS, Incident
from bot.services import Services

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT = 2.0  # Prometheus' default scrape timeout is 10 s; the counters must not wait


async def refresh(services: Services) -> None:
    """incidents_open{severity} and timers_pending, from the database.

    A database that does not answer leaves the gauges as last read: the counters are still
    served, and /healthz is where an unreachable database is reported.
    """
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            open_by_severity, timers = await _read(services)
    except (TimeoutError, OperationalError, DBAPIError, OSError) as exc:
        log.warning("metrics: gauges not refreshed, the database did not answer (%s)", exc)
        return
    for severity in Severity:
        services.metrics.set(
            "incidents_open", open_by_severity.get(severity.value, 0), severity=severity.value
        )
    services.metrics.set("timers_pending", timers)


async def _read(services: Services) -> tuple[dict[str, int], int]:
    async with services.sessions() as session:
        rows = await session.execute(
            sa.select(col(Incident.severity), sa.func.count())
            .where(col(Incident.status) != Status.RESOLVED)
            .group_by(col(Incident.severity))
        )
        open_by_severity = {str(getattr(sev, "value", sev)): int(n) for sev, n in rows.all()}
        timers = await session.execute(sa.select(sa.func.count()).select_from(SCHEDULER_JOBS))
        return open_by_severity, int(timers.scalar() or 0)
