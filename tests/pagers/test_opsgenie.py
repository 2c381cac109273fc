"""Opsgenie specifics: GenieKey auth, responders, priority, alias-addressed acknowledge/close."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx
import pytest

from bot.core.enums import Severity
from bot.errors import PagerFailed
from bot.pagers import OPSGENIE_PRIORITY, OpsgeniePager, RetryPolicy
from tests.pagers.conftest import GENIE_KEY, RecordingSleep, make_request
from tests.pagers.fakes import FakeOpsgenie

RESPONDERS = [
    {"type": "team", "name": "ops"},
    {"type": "user", "username": "dana@example.com"},
    {"type": "schedule", "id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c"},
    {"type": "escalation", "name": "ops-escalation"},
]


def _pager(
    fake: FakeOpsgenie,
    http: httpx.AsyncClient,
    retry: RetryPolicy,
    *,
    responders: Sequence[Mapping[str, str]] = RESPONDERS,
    priority: str | None = None,
) -> OpsgeniePager:
    return OpsgeniePager(
        api_key=GENIE_KEY,
        api_url=fake.base_url + "/",
        responders=responders,
        priority=priority,
        http=http,
        retry=retry,
    )


@pytest.fixture
def pager(opsgenie: FakeOpsgenie, http: httpx.AsyncClient, retry: RetryPolicy) -> OpsgeniePager:
    return _pager(opsgenie, http, retry)


async def test_create_alert_body(pager: OpsgeniePager, opsgenie: FakeOpsgenie) -> None:
    request = make_request()

    receipt = await pager.trigger(request)

    [seen] = opsgenie.received
    assert seen.path == "/v2/alerts"
    assert seen.headers["Authorization"] == f"GenieKey {GENIE_KEY}"
    alert = seen.body
    assert alert["message"] == request.summary
    assert alert["alias"] == "incident-bot/INC-7/ops"
    assert alert["responders"] == RESPONDERS
    assert alert["priority"] == "P1"
    assert alert["source"] == "incident-bot"
    assert "INC-7" in alert["tags"]
    assert alert["details"]["incident"] == "INC-7"
    assert "https://acme.slack.com/archives/C0INC7" in alert["description"]
    assert receipt.external_id == seen.answer["requestId"]
    assert seen.answer["result"] == "Request will be processed"


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(Severity.SEV1, "P1"), (Severity.SEV2, "P2"), (Severity.SEV3, "P3"), (Severity.SEV4, "P4")],
)
async def test_priority_follows_severity_by_default(
    pager: OpsgeniePager, opsgenie: FakeOpsgenie, severity: Severity, expected: str
) -> None:
    await pager.trigger(make_request(severity=severity))

    assert opsgenie.received[0].body["priority"] == expected == OPSGENIE_PRIORITY[severity]


async def test_a_configured_priority_wins(
    opsgenie: FakeOpsgenie, http: httpx.AsyncClient, retry: RetryPolicy
) -> None:
    pager = _pager(opsgenie, http, retry, priority="P5")

    await pager.trigger(make_request(severity=Severity.SEV1))

    assert opsgenie.received[0].body["priority"] == "P5"


async def test_acknowledge_and_close_address_the_alias(
    pager: OpsgeniePager, opsgenie: FakeOpsgenie
) -> None:
    request = make_request()
    await pager.trigger(request)

    await pager.acknowledge(request)
    assert opsgenie.alerts[request.dedup_key]["status"] == "acked"
    await pager.resolve(request)

    assert opsgenie.alerts[request.dedup_key]["status"] == "closed"
    assert opsgenie.actions == [
        ("acknowledge", request.dedup_key),
        ("close", request.dedup_key),
    ]
    ack, close = opsgenie.received[1:]
    assert ack.query == {"identifierType": "alias"}
    assert ack.headers["Authorization"] == f"GenieKey {GENIE_KEY}"
    assert ack.body["source"] == "incident-bot"
    assert close.path.endswith("/close")


async def test_a_repage_is_deduplicated_on_the_alias(
    pager: OpsgeniePager, opsgenie: FakeOpsgenie
) -> None:
    await pager.trigger(make_request())
    await pager.trigger(make_request())

    assert list(opsgenie.alerts) == ["incident-bot/INC-7/ops"]
    assert opsgenie.alerts["incident-bot/INC-7/ops"]["count"] == 2


@pytest.mark.parametrize("status", [400, 403, 422])
async def test_client_errors_are_not_retried(
    pager: OpsgeniePager, opsgenie: FakeOpsgenie, sleep: RecordingSleep, status: int
) -> None:
    opsgenie.fail_next(status, body={"message": "Request body is not processable", "took": 0.0})

    with pytest.raises(PagerFailed) as caught:
        await pager.trigger(make_request())

    assert caught.value.status == status
    assert caught.value.retryable is False
    assert "not processable" in caught.value.reason
    assert sleep.delays == []


async def test_long_fields_are_cut_to_opsgenies_limits(
    pager: OpsgeniePager, opsgenie: FakeOpsgenie
) -> None:
    request = make_request(title="t" * 20000, role="x" * 600)

    await pager.trigger(request)

    alert = opsgenie.received[0].body
    assert opsgenie.received[0].status == 202
    assert len(alert["message"]) <= 130
    assert len(alert["alias"]) == 512
    assert len(alert["description"]) == 15000
    assert all(len(tag) <= 50 for tag in alert["tags"])


@pytest.mark.parametrize(
    "responder",
    [{"type": "group", "name": "ops"}, {"type": "team"}, {"type": "user", "name": "dana"}],
)
def test_bad_responders_are_refused_at_construction(
    http: httpx.AsyncClient, responder: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="responder"):
        OpsgeniePager(
            api_key=GENIE_KEY,
            api_url="http://x",
            responders=[responder],
            priority=None,
            http=http,
            retry=RetryPolicy(),
        )


def test_a_bad_priority_is_refused_at_construction(http: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="priority"):
        OpsgeniePager(
            api_key=GENIE_KEY,
            api_url="http://x",
            responders=RESPONDERS,
            priority="P9",
            http=http,
            retry=RetryPolicy(),
        )
