"""The retry policy on its own: delays, Retry-After, and what counts as worth retrying."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.errors import PagerFailed
from bot.pagers.retry import RetryPolicy, failure_from, retry_after_seconds
from tests.pagers.conftest import RecordingSleep


def test_delays_double_and_are_capped() -> None:
    policy = RetryPolicy(attempts=8, base_delay=0.5, max_delay=8.0)

    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=120.0) == 8.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0.25", 0.25), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_in_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header) == expected


def test_retry_after_as_an_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    seconds = retry_after_seconds(later)

    assert seconds is not None
    assert 25 <= seconds <= 30


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (404, False), (408, True), (422, False), (429, True)]
    + [(500, True), (502, True), (503, True)],
)
def test_which_statuses_are_retried(status: int, retryable: bool) -> None:
    failure = failure_from("pagerduty", httpx.Response(status, json={"message": "m"}))

    assert failure.retryable is retryable
    assert failure.status == status


def test_the_error_names_the_provider_and_the_answer() -> None:
    failure = PagerFailed("opsgenie", "Could not authenticate", retryable=False, status=401)

    assert str(failure) == "opsgenie page failed (permanent, HTTP 401): Could not authenticate"


async def test_a_permanent_failure_stops_at_once() -> None:
    sleep = RecordingSleep()
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise PagerFailed("webhook", "gone", retryable=False, status=410)

    with pytest.raises(PagerFailed):
        await RetryPolicy(sleep=sleep).run(attempt)

    assert calls == 1
    assert sleep.delays == []


def test_a_policy_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="at least one attempt"):
        RetryPolicy(attempts=0)
