"""One contract, every pager: each runs against its provider's strict fake over real HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from bot.emulator import RecordedCall, SlackEmulator
from bot.errors import PagerFailed
from bot.pagers import (
    OpsgeniePager,
    Pager,
    PagerDutyPager,
    RetryPolicy,
    SlackDMPager,
    WebhookPager,
)
from bot.pagers.base import PageRequest
from tests.pagers.conftest import (
    GENIE_KEY,
    ROUTING_KEY,
    WEBHOOK_SECRET,
    RecordingSleep,
    make_request,
    slack_client,
)
from tests.pagers.fakes import FakeOpsgenie, FakePagerDuty, FakeWebhook

ATTEMPTS = 4
BACKOFF = [0.5, 1.0, 2.0]  # base 0.5, doubling, between 4 attempts


@dataclass
class Case:
    """A pager wired to its fake, and how to drive and read that fake."""

    pager: Pager
    refusing: Callable[[], Pager]  # a pager the provider refuses outright
    refused_status: int
    fail_next: Callable[[int, int, int | None], None]  # status, times, Retry-After seconds
    requests: Callable[[], int]  # trigger requests the provider received, valid or not
    accepted: Callable[[], list[str]]  # the summary-like text of each accepted trigger
    follow_ups: Callable[[], int]  # acknowledge/resolve requests accepted
    summary_limit: int | None
    stop: Callable[[], Awaitable[None]]


def _pagerduty(fake: FakePagerDuty, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    def pager(key: str = ROUTING_KEY) -> PagerDutyPager:
        return PagerDutyPager(routing_key=key, events_url=fake.events_url, http=http, retry=retry)

    def triggers() -> list[Any]:
        return [r for r in fake.received if (r.body or {}).get("event_action") == "trigger"]

    return Case(
        pager=pager(),
        refusing=lambda: pager("not-a-32-character-key"),
        refused_status=400,
        fail_next=lambda status, times, after: fake.fail_next(
            status, times=times, retry_after=None if after is None else str(after)
        ),
        requests=lambda: len(fake.received),
        accepted=lambda: [r.body["payload"]["summary"] for r in triggers() if r.status == 202],
        follow_ups=lambda: sum(1 for e in fake.events if e["event_action"] != "trigger"),
        summary_limit=1024,
        stop=fake.stop,
    )


def _opsgenie(fake: FakeOpsgenie, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    def pager(key: str = GENIE_KEY) -> OpsgeniePager:
        return OpsgeniePager(
            api_key=key,
            api_url=fake.base_url,
            responders=[{"type": "team", "name": "ops"}],
            priority=None,
            http=http,
            retry=retry,
        )

    return Case(
        pager=pager(),
        refusing=lambda: pager("wrong-key"),
        refused_status=401,
        fail_next=lambda status, times, after: fake.fail_next(
            status, times=times, retry_after=None if after is None else str(after)
        ),
        requests=lambda: sum(1 for r in fake.received if r.path == "/v2/alerts"),
        accepted=lambda: [
            r.body["message"] for r in fake.received if r.path == "/v2/alerts" and r.status == 202
        ],
        follow_ups=lambda: len(fake.actions),
        summary_limit=130,
        stop=fake.stop,
    )


def _webhook(fake: FakeWebhook, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    pager = WebhookPager(url=fake.url, secret=WEBHOOK_SECRET, http=http, retry=retry)

    def refusing() -> Pager:
        fake.fail_next(400)
        return pager

    return Case(
        pager=pager,
        refusing=refusing,
        refused_status=400,
        fail_next=lambda status, times, after: fake.fail_next(
            status, times=times, retry_after=None if after is None else str(after)
        ),
        requests=lambda: sum(1 for r in fake.received if (r.body or {}).get("event") == "trigger"),
        accepted=lambda: [e["summary"] for e in fake.events if e["event"] == "trigger"],
        follow_ups=lambda: sum(1 for e in fake.events if e["event"] != "trigger"),
        summary_limit=None,  # a webhook takes the summary whole
        stop=fake.stop,
    )


def _slack(emu: SlackEmulator, retry: RetryPolicy) -> Case:
    client = slack_client(emu)
    user = emu.add_user("oncall.ops", real_name="Ops On-call")

    def fail_next(status: int, times: int, after: int | None) -> None:
        emu.fail_next("chat.postMessage", status=status, times=times, retry_after=after or 1)

    def posts() -> list[RecordedCall]:
        return emu.calls_to("chat.postMessage")

    return Case(
        pager=SlackDMPager(client=client, user_id=user, retry=retry),
        # No such person: Slack answers 200 with ok=false, channel_not_found.
        refusing=lambda: SlackDMPager(client=client, user_id="U0NOBODY", retry=retry),
        refused_status=200,
        fail_next=fail_next,
        requests=lambda: len(posts()),
        accepted=lambda: [call.args["text"] for call in posts() if call.ok],
        follow_ups=lambda: sum(1 for call in emu.calls_to("chat.update") if call.ok),
        summary_limit=3000,  # the DM's fallback text; the blocks keep Slack's own limits
        stop=emu.stop,
    )


@pytest.fixture(params=["slack", "pagerduty", "opsgenie", "webhook"])
def case(request: pytest.FixtureRequest, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    # Each provider's fake fixture is started only for its own parameter.
    name = request.param
    if name == "slack":
        return _slack(request.getfixturevalue("emulator"), retry)
    if name == "pagerduty":
        return _pagerduty(request.getfixturevalue("pagerduty"), http, retry)
    if name == "opsgenie":
        return _opsgenie(request.getfixturevalue("opsgenie"), http, retry)
    return _webhook(request.getfixturevalue("webhook"), http, retry)


def _with_receipt(request: PageRequest, external_id: str | None) -> PageRequest:
    return dataclasses.replace(request, external_id=external_id)


async def test_trigger_sends_exactly_one_valid_request(case: Case, sleep: RecordingSleep) -> None:
    receipt = await case.pager.trigger(make_request())

    assert receipt.provider == case.pager.provider
    assert receipt.external_id
    assert case.requests() == 1
    assert len(case.accepted()) == 1
    assert sleep.delays == []


async def test_acknowledge_and_resolve_reach_the_provider(case: Case) -> None:
    request = make_request()
    receipt = await case.pager.trigger(request)
    followed = _with_receipt(request, receipt.external_id)

    await case.pager.acknowledge(followed)
    assert case.follow_ups() == 1
    await case.pager.resolve(followed)
    assert case.follow_ups() == 2


async def test_a_refusal_is_not_retried(case: Case, sleep: RecordingSleep) -> None:
    pager = case.refusing()

    with pytest.raises(PagerFailed) as caught:
        await pager.trigger(make_request())

    assert caught.value.retryable is False
    assert caught.value.status == case.refused_status
    assert caught.value.provider == case.pager.provider
    assert case.requests() == 1
    assert sleep.delays == []


async def test_a_rate_limit_is_retried_after_retry_after(case: Case, sleep: RecordingSleep) -> None:
    case.fail_next(429, 1, 3)

    receipt = await case.pager.trigger(make_request())

    assert receipt.external_id
    assert case.requests() == 2
    assert len(case.accepted()) == 1
    assert sleep.delays == [3.0]


async def test_retry_after_is_capped_at_max_delay(case: Case, sleep: RecordingSleep) -> None:
    case.fail_next(429, 2, 600)

    await case.pager.trigger(make_request())

    assert sleep.delays == [8.0, 8.0]


async def test_server_errors_exhaust_the_attempts(case: Case, sleep: RecordingSleep) -> None:
    case.fail_next(500, ATTEMPTS, None)

    with pytest.raises(PagerFailed) as caught:
        await case.pager.trigger(make_request())

    assert caught.value.retryable is True
    assert caught.value.status == 500
    assert f"after {ATTEMPTS} attempts" in str(caught.value)
    assert case.requests() == ATTEMPTS
    assert case.accepted() == []
    assert sleep.delays == BACKOFF


async def test_a_server_error_then_success_delivers_once(case: Case, sleep: RecordingSleep) -> None:
    case.fail_next(500, 2, None)

    await case.pager.trigger(make_request())

    assert case.requests() == 3
    assert len(case.accepted()) == 1
    assert sleep.delays == BACKOFF[:2]


async def test_an_overlong_summary_is_cut_not_refused(case: Case) -> None:
    long = "Checkout latency spike " * 300  # 6,900 characters
    request = make_request(title=long.strip(), summary="INC-7 (SEV1): " + long)

    await case.pager.trigger(request)

    [delivered] = case.accepted()
    if case.summary_limit is None:
        assert delivered == request.summary
    else:
        assert len(delivered) <= case.summary_limit
        assert delivered.endswith("…")


async def test_a_provider_that_is_down_is_retried_then_fails(
    case: Case, sleep: RecordingSleep
) -> None:
    await case.stop()

    with pytest.raises(PagerFailed) as caught:
        await case.pager.trigger(make_request())

    assert caught.value.retryable is True
    assert caught.value.status is None
    assert sleep.delays == BACKOFF
