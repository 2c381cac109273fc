"""What is asked of the use cases, and what the person who asked sees."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.enums import Severity
from bot.db.models import Incident


@dataclass(frozen=True)
class Reply:
    """What the person who asked sees, privately."""

    text: str
    blocks: list[dict[str, Any]] | None = None


# Extra steps of a declaration, run inside its transaction (the playbook's paging plan).
Plan = Callable[[AsyncSession, Incident], Awaitable[None]]


@dataclass(frozen=True)
class Origin:
    """A Slack message an incident was declared from; it becomes the first timeline entry."""

    channel_id: str
    ts: str
    user: str | None
    text: str
    permalink: str | None = None


@dataclass(frozen=True)
class Declaration:
    """What someone declares: from `/incident declare`, the form, or the message shortcut."""

    title: str
    severity: Severity = Severity.SEV3
    private: bool = False
    service: str | None = None
    impact: str | None = None
    origin: Origin | None = None
    source: str = "command"  # command, form, shortcut, alert
    started_at: datetime | None = None  # when impact began, if known (an alert's startsAt)


@dataclass(frozen=True)
class Asked:
    """Who asks, about which incident: named (INC-7), or the one whose channel they are in."""

    actor: str
    number: int | None = None
    channel_id: str | None = None
