"""PagerDuty specifics: the Events v2 body, severity mapping, dedup keys, PD's own errors."""

from __future__ import annotations

import httpx
import pytest

from bot.core.enums import Severity
from bot.errors import PagerFailed
from bot.pagers import PAGERDUTY_SEVERITY, PagerDutyPager, RetryPolicy
from bot.pagers.base import dedup_key_for
from tests.pagers.conftest import ROUTING_KEY, RecordingSleep, make_request
from tests.pagers.fakes import FakePagerDuty


@pytest.fixture
def pager(pagerduty: FakePagerDuty, http: httpx.AsyncClient, retry: RetryPolicy) -> PagerDutyPager:
    return PagerDutyPager(
        routing_key=ROUTING_KEY, events_url=pagerduty.events_url, http=http, retry=retry
    )


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (Severity.SEV1, "critical"),
        (Severity.SEV2, "error"),
        (Severity.SEV3, "warning"),
        (Severity.SEV4, "info"),
    ],
)
async def test_severity_maps_to_pagerduty_severity(
    pager: PagerDutyPager, pagerduty: FakePagerDuty, severity: Severity, expected: str
) -> None:
    await pager.trigger(make_request(severity=severity))

    [event] = pagerduty.events
    assert event["payload"]["severity"] == expected == PAGERDUTY_SEVERITY[severity]


def test_every_severity_has_a_pagerduty_severity() -> None:
    assert set(PAGERDUTY_SEVERITY) == set(Severity)


async def test_trigger_body_follows_events_v2(
    pager: PagerDutyPager, pagerduty: FakePagerDuty
) -> None:
    request = make_request()

    receipt = await pager.trigger(request)

    [event] = pagerduty.events
    assert event["routing_key"] == ROUTING_KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == "incident-bot/INC-7/ops"
    assert event["payload"]["summary"] == request.summary
    assert event["payload"]["source"] == "incident-bot"
    assert event["payload"]["custom_details"]["incident"] == "INC-7"
    assert event["payload"]["custom_details"]["role"] == "ops"
    assert event["client"] == "incident-bot"
    assert event["links"] == [
        {"href": "https://acme.slack.com/archives/C0INC7", "text": "INC-7 in Slack"}
    ]
    assert receipt.external_id == "incident-bot/INC-7/ops"  # PD echoes the dedup key
    [seen] = pagerduty.received
    assert seen.headers["Content-Type"] == "application/json"


async def test_acknowledge_and_resolve_carry_only_the_key(
    pager: PagerDutyPager, pagerduty: FakePagerDuty
) -> None:
    request = make_request()
    await pager.trigger(request)

    await pager.acknowledge(request)
    assert pagerduty.alerts[request.dedup_key] == "acknowledge"
    await pager.resolve(request)

    assert pagerduty.alerts[request.dedup_key] == "resolve"
    follow_ups = pagerduty.events[1:]
    assert [e["event_action"] for e in follow_ups] == ["acknowledge", "resolve"]
    for event in follow_ups:
        assert set(event) == {"routing_key", "event_action", "dedup_key"}
        assert event["dedup_key"] == request.dedup_key


async def test_dedup_key_is_stable_per_incident_and_role(
    pager: PagerDutyPager, pagerduty: FakePagerDuty
) -> None:
    assert dedup_key_for(ref="INC-7", role="ops") == dedup_key_for(ref="INC-7", role="ops")
    assert dedup_key_for(ref="INC-7", role="ops") != dedup_key_for(ref="INC-7", role="db")
    assert dedup_key_for(ref="INC-7", role="ops") != dedup_key_for(ref="INC-8", role="ops")

    await pager.trigger(make_request(role="ops"))
    await pager.trigger(make_request(role="ops"))  # a re-page updates the same alert
    await pager.trigger(make_request(role="db"))

    assert sorted(pagerduty.alerts) == ["incident-bot/INC-7/db", "incident-bot/INC-7/ops"]


async def test_an_overlong_dedup_key_is_fitted_the_same_way_every_time(
    pager: PagerDutyPager, pagerduty: FakePagerDuty
) -> None:
    request = make_request(role="r" * 400)

    await pager.trigger(request)
    await pager.resolve(request)

    keys = [event["dedup_key"] for event in pagerduty.events]
    assert len(keys[0]) == 255
    assert keys[0] == keys[1]


async def test_a_bad_event_reports_pagerdutys_errors(
    pagerduty: FakePagerDuty, http: httpx.AsyncClient, retry: RetryPolicy, sleep: RecordingSleep
) -> None:
    pager = PagerDutyPager(
        routing_key="too-short", events_url=pagerduty.events_url, http=http, retry=retry
    )

    with pytest.raises(PagerFailed) as caught:
        await pager.trigger(make_request())

    assert caught.value.status == 400
    assert caught.value.retryable is False
    assert "invalid event" in caught.value.reason
    assert "routing_key" in caught.value.reason
    assert sleep.delays == []


def test_a_blank_routing_key_is_refused_at_construction(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="routing key"):
        PagerDutyPager(routing_key=" ", events_url="http://x", http=http, retry=RetryPolicy())


async def test_unknown_4xx_is_not_retried(
    pager: PagerDutyPager, pagerduty: FakePagerDuty, sleep: RecordingSleep
) -> None:
    pagerduty.fail_next(403, body={"status": "forbidden", "message": "Forbidden"})

    with pytest.raises(PagerFailed) as caught:
        await pager.acknowledge(make_request())

    assert caught.value.status == 403
    assert caught.value.retryable is False
    assert len(pagerduty.received) == 1
