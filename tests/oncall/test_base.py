"""The pure parts: how a source is described, and the minute's cache on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.playbooks import OnCallSource
from bot.oncall import describe_source
from bot.oncall.base import OnCallPerson
from bot.oncall.cache import OnCallCache

NOW = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)


def test_each_source_is_described_as_the_playbook_writes_it() -> None:
    assert describe_source(OnCallSource(pagerduty_schedule="PABC123")) == (
        "on call in PagerDuty schedule PABC123"
    )
    assert describe_source(OnCallSource(pagerduty_escalation_policy="PXYZ789")) == (
        "on call at the first level of PagerDuty escalation policy PXYZ789"
    )
    assert describe_source(OnCallSource(opsgenie_schedule="dba-schedule")) == (
        "on call in Opsgenie schedule dba-schedule"
    )


def test_an_answer_is_kept_for_a_minute_and_no_longer() -> None:
    cache = OnCallCache()
    key = ("pagerduty", "pagerduty_schedule", "PABC123", "PAGERDUTY_API_TOKEN")
    people = (OnCallPerson("ann@example.com", "Ann"),)

    cache.put(key, people, now=NOW)

    assert cache.get(key, now=NOW + timedelta(seconds=59)) == people
    assert cache.get(key, now=NOW + timedelta(seconds=60)) is None
    assert cache.get(key, now=NOW - timedelta(seconds=1)) is None  # a clock set back
    other = ("pagerduty", "pagerduty_schedule", "PABC123", "OTHER_TOKEN")
    assert cache.get(other, now=NOW) is None
