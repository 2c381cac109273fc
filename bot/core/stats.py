"""`/incident stats`: how the incident process is doing over a window, from plain facts.

Decisions the numbers follow:
- An incident belongs to the window when it was declared inside it; its severity is its
  current one.
- Time to acknowledge runs from the incident's first page to its first acknowledgement (the
  time the incident waited for someone, escalations included); incidents never paged or never
  acknowledged are left out of it.
- Time to resolve runs from when impact began (`/incident started`, else the earliest thing on
  the timeline: a first alert, a message declared from, a backdated note, the declaration) to
  the resolution, as the postmortem counts its duration; open incidents are left out of it.
- The median is the middle value (the mean of the two middle ones); p90 is the nearest-rank
  90th percentile: the smallest value at least 90 % of the values do not exceed.
- Open follow-up tasks are counted by owner over every incident, whatever its age: a task is
  open until it is done or removed, and that is what its owner has to do now.
- Private incidents count like any other; one is named only for people who may see it.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.clock import humanize_duration
from bot.core.enums import Severity
from bot.core.lifecycle import severity_label

DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW_DAYS = 365


@dataclass(frozen=True)
class IncidentFacts:
    """What the stats need to know of one incident."""

    ref: str
    severity: Severity
    declared_at: datetime
    began_at: datetime  # started_at, else the earliest timeline entry, else declared_at
    resolved_at: datetime | None  # None while open
    first_page_at: datetime | None = None
    first_ack_at: datetime | None = None
    private: bool = False


@dataclass(frozen=True)
class Spread:
    """Median and p90 of some durations, and how many there were."""

    count: int
    median: timedelta | None
    p90: timedelta | None


@dataclass(frozen=True)
class Longest:
    """The incident that took longest to resolve; `ref` None when the asker may not see it."""

    ref: str | None
    took: timedelta
    private: bool = False


@dataclass(frozen=True)
class IncidentStats:
    """The figures `/incident stats` shows."""

    window: timedelta
    since: datetime
    total: int
    by_severity: Mapping[Severity, int]
    acknowledge: Spread
    resolve: Spread
    longest: Longest | None
    open_tasks: Sequence[tuple[str | None, int]]  # owner (None: nobody) and count, most first


def spread(durations: Iterable[timedelta]) -> Spread:
    """Median and nearest-rank p90."""
    values = sorted(max(d, timedelta(0)) for d in durations)
    if not values:
        return Spread(0, None, None)
    median = timedelta(seconds=statistics.median(v.total_seconds() for v in values))
    p90 = values[math.ceil(0.9 * len(values)) - 1]
    return Spread(len(values), median, p90)


def compute(
    incidents: Iterable[IncidentFacts],
    open_task_owners: Iterable[str | None],
    *,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> IncidentStats:
    """The stats of the incidents declared in the `window` before `now`."""
    since = now - window
    chosen = [i for i in incidents if since <= i.declared_at <= now]
    by_severity = Counter(i.severity for i in chosen)
    acknowledged = [
        i.first_ack_at - i.first_page_at
        for i in chosen
        if i.first_page_at is not None and i.first_ack_at is not None
    ]
    resolved = [(i, max(i.resolved_at - i.began_at, timedelta(0))) for i in chosen if i.resolved_at]
    longest = None
    if resolved:
        incident, took = max(resolved, key=lambda pair: (pair[1], pair[0].declared_at))
        longest = Longest(ref=incident.ref, took=took, private=incident.private)
    owners = Counter(open_task_owners)
    return IncidentStats(
        window=window,
        since=since,
        total=len(chosen),
        by_severity={severity: by_severity.get(severity, 0) for severity in Severity},
        acknowledge=spread(acknowledged),
        resolve=spread(took for _, took in resolved),
        longest=longest,
        open_tasks=sorted(owners.items(), key=lambda pair: (-pair[1], pair[0] or "~")),
    )


def _days(window: timedelta) -> str:
    days = window.days
    return "day" if days == 1 else f"{days} days"


def _spread_line(name: str, what: str, figures: Spread, counted: str) -> str:
    if figures.count == 0 or figures.median is None or figures.p90 is None:
        return f"*{name}* ({what}): no {counted} incidents yet."
    return (
        f"*{name}* ({what}, {figures.count} {counted}): "
        f"median {humanize_duration(figures.median)}, p90 {humanize_duration(figures.p90)}."
    )


def render_stats(stats: IncidentStats, *, tz: ZoneInfo) -> str:
    """The stats as Slack mrkdwn lines; the window's first day as a date in `tz`."""
    severities = " · ".join(
        f"{severity_label(severity)} {count}" for severity, count in stats.by_severity.items()
    )
    since = stats.since.astimezone(tz).date().isoformat()
    lines = [
        f"*Incidents in the last {_days(stats.window)}* (declared since {since}): "
        f"{stats.total} — {severities}",
        _spread_line(
            "Time to acknowledge",
            "first page to first acknowledgement",
            stats.acknowledge,
            "acknowledged",
        ),
        _spread_line("Time to resolve", "impact start to resolution", stats.resolve, "resolved"),
    ]
    if stats.longest is not None:
        who = stats.longest.ref or "a private incident"
        lines.append(f"*Longest to resolve:* {who} ({humanize_duration(stats.longest.took)}).")
    total = sum(count for _, count in stats.open_tasks)
    if total:
        owners = " · ".join(
            f"{f'<@{owner}>' if owner else 'no owner'} {count}" for owner, count in stats.open_tasks
        )
        lines.append(f"*Open follow-up tasks* (all incidents): {total} — {owners}")
    else:
        lines.append("*Open follow-up tasks* (all incidents): none.")
    return "\n".join(lines)
