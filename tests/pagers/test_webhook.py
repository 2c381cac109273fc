"""The generic webhook: documented body, HMAC signature, any 2xx is success."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import httpx
import pytest

from bot.errors import PagerFailed
from bot.pagers import RetryPolicy, WebhookPager
from bot.pagers.webhook import SIGNATURE_HEADER, verify_signature
from tests.pagers.conftest import WEBHOOK_SECRET, RecordingSleep, make_request
from tests.pagers.fakes import FakeWebhook

FIELDS = {
    "event",
    "ref",
    "title",
    "severity",
    "dedup_key",
    "summary",
    "message",
    "role",
    "channel_url",
}


async def test_events_carry_the_documented_fields(
    webhook: FakeWebhook, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    pager = WebhookPager(url=webhook.url, secret=WEBHOOK_SECRET, http=http, retry=retry)
    request = make_request()

    receipt = await pager.trigger(request)
    await pager.acknowledge(request)
    await pager.resolve(request)

    assert [event["event"] for event in webhook.events] == ["trigger", "acknowledge", "resolve"]
    first = webhook.events[0]
    assert set(first) == FIELDS
    assert first["severity"] == "sev1"
    assert first["dedup_key"] == "incident-bot/INC-7/ops"
    assert receipt.external_id == request.dedup_key


async def test_the_signature_is_an_hmac_of_the_exact_body(
    webhook: FakeWebhook, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    pager = WebhookPager(url=webhook.url, secret=WEBHOOK_SECRET, http=http, retry=retry)

    await pager.trigger(make_request())

    [seen] = webhook.received
    expected = hmac.new(WEBHOOK_SECRET.encode(), seen.raw, hashlib.sha256).hexdigest()
    assert seen.headers[SIGNATURE_HEADER] == f"sha256={expected}"
    assert verify_signature(WEBHOOK_SECRET, seen.raw, seen.headers[SIGNATURE_HEADER])
    assert not verify_signature("other", seen.raw, seen.headers[SIGNATURE_HEADER])
    assert json.loads(seen.raw)["event"] == "trigger"


async def test_without_a_secret_nothing_is_signed(
    webhook: FakeWebhook, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    webhook.secret = None
    pager = WebhookPager(url=webhook.url, secret=None, http=http, retry=retry)

    await pager.trigger(make_request())

    assert SIGNATURE_HEADER not in webhook.received[0].headers


async def test_a_wrong_secret_is_refused_without_retry(
    webhook: FakeWebhook, http: httpx.AsyncClient, retry: RetryPolicy, sleep: RecordingSleep
) -> None:
    pager = WebhookPager(url=webhook.url, secret="not-the-secret", http=http, retry=retry)

    with pytest.raises(PagerFailed) as caught:
        await pager.trigger(make_request())

    assert caught.value.status == 401
    assert caught.value.retryable is False
    assert "bad signature" in caught.value.reason
    assert sleep.delays == []


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_any_2xx_is_success(status: int, retry: RetryPolicy) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(status))
    async with httpx.AsyncClient(transport=transport) as http:
        pager = WebhookPager(
            url="https://hooks.example.com/page", secret=None, http=http, retry=retry
        )
        receipt = await pager.trigger(make_request())

    assert receipt.provider == "webhook"


async def test_a_timeout_is_retried(retry: RetryPolicy, sleep: RecordingSleep) -> None:
    answers: Iterator[httpx.Response | Exception] = iter(
        [httpx.ReadTimeout("slow"), httpx.Response(408), httpx.Response(204)]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        pager = WebhookPager(
            url="https://hooks.example.com/page", secret=None, http=http, retry=retry
        )
        await pager.trigger(make_request())

    assert sleep.delays == [0.5, 1.0]
