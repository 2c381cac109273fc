"""The figures of `/incident stats`, computed from plain facts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bot.core.enums import Severity
from bot.core.stats import IncidentFacts, Longest, Spread, compute, render_stats, spread

NOW = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)
LA = ZoneInfo("America/Los_Angeles")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def facts(
    n: int,
    *,
    severity: Severity = Severity.SEV2,
    days_ago: float = 1,
    began_before: float = 0,
    resolved_after: float | None = None,
    ack_after: float | None = None,
    private: bool = False,
) -> IncidentFacts:
    declared = NOW - timedelta(days=days_ago)
    began = declared - minutes(began_before)
    return IncidentFacts(
        ref=f"INC-{n}",
        severity=severity,
        declared_at=declared,
        began_at=began,
        resolved_at=began + minutes(resolved_after) if resolved_after is not None else None,
        first_page_at=declared if ack_after is not None else None,
        first_ack_at=declared + minutes(ack_after) if ack_after is not None else None,
        private=private,
    )


def test_median_and_nearest_rank_p90() -> None:
    assert spread([]) == Spread(0, None, None)
    assert spread([minutes(5)]) == Spread(1, minutes(5), minutes(5))
    assert spread([minutes(4), minutes(10)]) == Spread(2, minutes(7), minutes(10))
    ten = [minutes(n) for n in range(10, 0, -1)]  # 1..10 minutes, unsorted
    assert spread(ten) == Spread(10, minutes(5.5), minutes(9))
    eleven = [*ten, minutes(60)]
    assert spread(eleven) == Spread(11, minutes(6), minutes(10))


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=60))
def test_p90_is_a_value_at_least_90_percent_do_not_exceed(seconds: list[int]) -> None:
    figures = spread(timedelta(seconds=s) for s in seconds)
    assert figures.p90 is not None and figures.median is not None
    p90 = figures.p90.total_seconds()
    assert p90 in seconds
    assert sum(s <= p90 for s in seconds) >= 0.9 * len(seconds)
    assert sum(s < p90 for s in seconds) < 0.9 * len(seconds)
    assert min(seconds) <= figures.median.total_seconds() <= max(seconds)


def test_only_incidents_declared_in_the_window_count() -> None:
    stats = compute(
        [
            facts(1, days_ago=31, resolved_after=600, ack_after=50),
            facts(2, days_ago=29.9, severity=Severity.SEV1, resolved_after=90, ack_after=4),
            facts(3, days_ago=2, resolved_after=30, ack_after=2, began_before=10),
            facts(4, days_ago=1, severity=Severity.SEV4),  # open, never paged
            facts(5, days_ago=0.5, ack_after=12),  # open, acknowledged
        ],
        [],
        now=NOW,
        window=timedelta(days=30),
    )
    assert stats.total == 4
    assert stats.by_severity == {
        Severity.SEV1: 1,
        Severity.SEV2: 2,
        Severity.SEV3: 0,
        Severity.SEV4: 1,
    }
    assert stats.acknowledge == Spread(3, minutes(4), minutes(12))
    assert stats.resolve == Spread(2, minutes(60), minutes(90))
    assert stats.longest == Longest(ref="INC-2", took=minutes(90))
    wider = compute([facts(1, days_ago=31, resolved_after=600)], [], now=NOW, window=timedelta(90))
    assert wider.total == 1 and wider.longest == Longest(ref="INC-1", took=minutes(600))


def test_open_tasks_are_counted_by_owner_most_first() -> None:
    stats = compute([], ["UBOB", None, "UALICE", "UBOB", None, "UCAROL", "UBOB"], now=NOW)
    assert stats.open_tasks == [("UBOB", 3), (None, 2), ("UALICE", 1), ("UCAROL", 1)]


def test_the_rendered_lines() -> None:
    stats = compute(
        [
            facts(1, days_ago=3, severity=Severity.SEV1, resolved_after=95, ack_after=3),
            facts(2, days_ago=2, resolved_after=20, ack_after=7, private=True),
        ],
        ["UBOB", None, "UBOB"],
        now=NOW,
    )
    assert render_stats(stats, tz=LA).splitlines() == [
        "*Incidents in the last 30 days* (declared since 2026-10-26): 2 — "
        "SEV1 1 · SEV2 1 · SEV3 0 · SEV4 0",
        "*Time to acknowledge* (first page to first acknowledgement, 2 acknowledged): "
        "median 5 minutes, p90 7 minutes.",
        "*Time to resolve* (impact start to resolution, 2 resolved): "
        "median 57 minutes, p90 1 hour and 35 minutes.",
        "*Longest to resolve:* INC-1 (1 hour and 35 minutes).",
        "*Open follow-up tasks* (all incidents): 3 — <@UBOB> 2 · no owner 1",
    ]


def test_nothing_yet_is_said_plainly_and_a_hidden_incident_is_not_named() -> None:
    empty = compute([], [], now=NOW, window=timedelta(days=90))
    assert render_stats(empty, tz=LA).splitlines() == [
        "*Incidents in the last 90 days* (declared since 2026-08-27): 0 — "
        "SEV1 0 · SEV2 0 · SEV3 0 · SEV4 0",
        "*Time to acknowledge* (first page to first acknowledgement): no acknowledged "
        "incidents yet.",
        "*Time to resolve* (impact start to resolution): no resolved incidents yet.",
        "*Open follow-up tasks* (all incidents): none.",
    ]
    hidden = compute([facts(9, resolved_after=5, private=True)], [], now=NOW)
    assert hidden.longest == Longest(ref="INC-9", took=minutes(5), private=True)
    shown = render_stats(replace(hidden, longest=Longest(None, minutes(5), True)), tz=LA)
    assert "*Longest to resolve:* a private incident (5 minutes)." in shown
    assert "INC-9" not in shown
