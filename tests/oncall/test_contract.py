"""One contract, both on-call providers: each runs against its provider's strict fake over HTTP.

Every case builds the same world in the provider's terms: a layered schedule with an override,
a schedule nobody is on call in, and no such schedule; then asks the provider and checks what
the contract promises (everyone on call now, once each; [] for nobody; "unknown" for a schedule
that does not exist; "refused" for a bad key; "unavailable" after the retries for an outage).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest

from bot.core.playbooks import OnCallSource
from bot.oncall.base import OnCallFailed, OnCallProvider
from bot.oncall.opsgenie import OpsgenieOnCall
from bot.oncall.pagerduty import PagerDutyOnCall
from bot.pagers.retry import RetryPolicy
from tests.oncall.conftest import GENIE_KEY, PD_TOKEN
from tests.oncall.fakes import FakeOpsgenieOnCall, FakePagerDutyREST
from tests.pagers.conftest import RecordingSleep

ATTEMPTS = 3
BACKOFF = [0.5, 1.0]

# Two layers (ann alone; bob and cat overlapping) and an override putting dan in for bob.
LAYERED_EMAILS = ["ann@example.com", "dan@example.com", "cat@example.com"]


@dataclass
class Case:
    """A provider wired to its fake, the sources of the shared world, and how to drive it."""

    provider: OnCallProvider
    refusing: OnCallProvider
    layered: OnCallSource
    empty: OnCallSource
    missing: OnCallSource
    fail_next: Callable[[int, int, int | None], None]
    requests: Callable[[], int]
    stop: Callable[[], Awaitable[None]]


def _pagerduty(fake: FakePagerDutyREST, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    for key in ("ann", "bob", "cat", "dan"):
        fake.add_user(key, email=f"{key}@example.com")
    fake.add_schedule("PLAYER1", layers=[["ann"], ["bob", "cat"]], overrides={"bob": "dan"})
    fake.add_schedule("PEMPTY1", layers=[[]])

    def provider(token: str = PD_TOKEN) -> PagerDutyOnCall:
        return PagerDutyOnCall(api_url=fake.base_url, token=token, http=http, retry=retry)

    return Case(
        provider=provider(),
        refusing=provider("wrong-token"),
        layered=OnCallSource(pagerduty_schedule="PLAYER1"),
        empty=OnCallSource(pagerduty_schedule="PEMPTY1"),
        missing=OnCallSource(pagerduty_schedule="PNOSUCH"),
        fail_next=lambda status, times, after: fake.fail_next(
            status, times=times, retry_after=None if after is None else str(after)
        ),
        requests=lambda: len(fake.received),
        stop=fake.stop,
    )


def _opsgenie(fake: FakeOpsgenieOnCall, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    fake.add_schedule(
        "platform-primary",
        layers=[["ann@example.com"], ["bob@example.com", "cat@example.com"]],
        overrides={"bob@example.com": "dan@example.com"},
    )
    fake.add_schedule("quiet-schedule", layers=[[]])

    def provider(key: str = GENIE_KEY) -> OpsgenieOnCall:
        return OpsgenieOnCall(api_url=fake.base_url, api_key=key, http=http, retry=retry)

    return Case(
        provider=provider(),
        refusing=provider("wrong-key"),
        layered=OnCallSource(opsgenie_schedule="platform-primary"),
        empty=OnCallSource(opsgenie_schedule="quiet-schedule"),
        missing=OnCallSource(opsgenie_schedule="no-such-schedule"),
        fail_next=lambda status, times, after: fake.fail_next(
            status, times=times, retry_after=None if after is None else str(after)
        ),
        requests=lambda: len(fake.received),
        stop=fake.stop,
    )


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
def retry(sleep: RecordingSleep) -> RetryPolicy:
    return RetryPolicy(attempts=ATTEMPTS, base_delay=0.5, max_delay=2.0, sleep=sleep)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


@pytest.fixture(params=["pagerduty", "opsgenie"])
def case(request: pytest.FixtureRequest, http: httpx.AsyncClient, retry: RetryPolicy) -> Case:
    # Each provider's fake is started only for its own parameter.
    if request.param == "pagerduty":
        return _pagerduty(request.getfixturevalue("pd_rest"), http, retry)
    return _opsgenie(request.getfixturevalue("og_oncall"), http, retry)


async def test_everyone_on_call_in_every_layer_with_overrides(case: Case) -> None:
    people = await case.provider.on_call(case.layered)

    assert sorted(p.email for p in people) == sorted(LAYERED_EMAILS)
    assert "bob@example.com" not in [p.email for p in people]  # dan stands in for bob


async def test_nobody_on_call_is_an_empty_answer_not_an_error(case: Case) -> None:
    assert await case.provider.on_call(case.empty) == []


async def test_an_unknown_schedule_is_told_apart_from_nobody(case: Case) -> None:
    with pytest.raises(OnCallFailed) as caught:
        await case.provider.on_call(case.missing)

    assert caught.value.kind == "unknown"
    assert case.missing.identifier in caught.value.reason


async def test_a_refused_key_is_not_retried(case: Case, sleep: RecordingSleep) -> None:
    with pytest.raises(OnCallFailed) as caught:
        await case.refusing.on_call(case.layered)

    assert caught.value.kind == "refused"
    assert "401" in caught.value.reason
    assert case.requests() == 1 and sleep.delays == []


async def test_a_rate_limit_waits_for_retry_after(case: Case, sleep: RecordingSleep) -> None:
    case.fail_next(429, 1, 1)

    people = await case.provider.on_call(case.layered)

    assert len(people) == 3
    assert sleep.delays == [1.0]


async def test_an_outage_is_unavailable_after_the_retries(
    case: Case, sleep: RecordingSleep
) -> None:
    case.fail_next(503, ATTEMPTS, None)

    with pytest.raises(OnCallFailed) as caught:
        await case.provider.on_call(case.layered)

    assert caught.value.kind == "unavailable"
    assert "HTTP 503" in caught.value.reason
    assert case.requests() == ATTEMPTS and sleep.delays == BACKOFF


async def test_a_provider_that_is_down_is_unavailable(case: Case, sleep: RecordingSleep) -> None:
    await case.stop()

    with pytest.raises(OnCallFailed) as caught:
        await case.provider.on_call(case.layered)

    assert caught.value.kind == "unavailable"
    assert sleep.delays == BACKOFF


async def test_exists_tells_known_from_unknown_schedules(case: Case) -> None:
    assert await case.provider.exists(case.layered) is True
    assert await case.provider.exists(case.empty) is True
    assert await case.provider.exists(case.missing) is False
