"""Input from anyone on the internet: a 4xx, never a 5xx, a traceback or a lost ack.

Everything goes to the real server on a real port. Each test captures the log: an ERROR (or a
traceback) in it is a defect of ours. The Hypothesis properties at the end run over every HTTP
entry point in ENTRY_POINTS; a new endpoint is covered by adding it to that list.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from bot.core.clock import FakeClock
from bot.db.models import TimelineEntry
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId, CallbackId
from bot.web import protocol_errors
from tests.conftest import SIGNING_SECRET as SLACK_SECRET
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.slack_requests import command_body, event_body, interactivity_body

PD_SECRET = "pd-webhook-secret-for-tests"
PM_TOKEN = "postmortem-token-for-tests"
GH_SECRET = "github-webhook-secret-for-tests"
JIRA_SECRET = "jira-webhook-secret-for-tests"
ALERT_TOKEN = "alert-webhook-token-for-tests"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def bot(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    """The bot with every entry point switched on (PagerDuty webhook, postmortem endpoint)."""
    config = make_settings(
        database_url=sqlite_url,
        api_url=emulator.url,
        PAGERDUTY_WEBHOOK_SECRET=PD_SECRET,
        POSTMORTEM_TOKEN=PM_TOKEN,
        GITHUB_WEBHOOK_SECRET=GH_SECRET,
        JIRA_WEBHOOK_SECRET=JIRA_SECRET,
        ALERT_WEBHOOK_TOKEN=ALERT_TOKEN,
    )
    harness, runner = await start_bot(settings=config, emulator=emulator, clock=clock)
    try:
        yield harness
    finally:
        await stop_bot(harness, runner)


@pytest.fixture
def errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """The ERROR records (and any record with a traceback) logged so far."""
    caplog.set_level(logging.DEBUG)

    def found() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    return found


@dataclass
class Answer:
    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def send(
    bot: BotHarness,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Answer:
    async with bot.http.request(method, bot.url + path, data=body, headers=headers or {}) as r:
        return Answer(r.status, (await r.read()).decode("utf-8", "replace"))


def slack_signed(body: bytes, content_type: str = FORM) -> dict[str, str]:
    """Headers as Slack signs them, over the raw bytes (which need not be UTF-8)."""
    ts = str(int(time.time()))
    digest = hmac.new(SLACK_SECRET.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }


def pd_signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(PD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={digest}"}


def github_signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": f"d-{time.monotonic_ns()}",
        "X-Hub-Signature-256": f"sha256={digest}",
    }


def jira_signed(body: bytes) -> dict[str, str]:
    digest = hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature": f"sha256={digest}"}


async def slack(bot: BotHarness, body: bytes, content_type: str = FORM) -> Answer:
    return await send(bot, "POST", "/slack/events", body, slack_signed(body, content_type))


async def timeline_size(bot: BotHarness) -> int:
    async with bot.services.sessions() as session:
        return int(
            (await session.execute(select(func.count()).select_from(TimelineEntry))).scalar_one()
        )


# -- anyone, without the signing secret ------------------------------------------------------


@pytest.mark.parametrize("timestamp", ["abc", "", "0x10", "1795969704.5", "١٢٣"])
async def test_a_timestamp_that_is_not_a_number_is_401(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], timestamp: str
) -> None:
    body = command_body("help", user_id="U1", channel_id="C1", response_url="https://x").encode()
    headers = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=abc",
    }
    assert (await send(bot, "POST", "/slack/events", body, headers)).status == 401
    assert errors() == []


@pytest.mark.parametrize(
    "body",
    [b"payload=%7Bnot-json", b"[]", b"\xff\xfe\xfd", b"[" * 5000 + b"]" * 5000, b'{"a":' * 5000],
)
async def test_unsigned_bodies_are_401_before_anything_reads_them(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], body: bytes
) -> None:
    headers = {"Content-Type": FORM, "X-Slack-Request-Timestamp": str(int(time.time()))}
    assert (await send(bot, "POST", "/slack/events", body, headers)).status == 401
    assert errors() == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"payload=%7Bnot-json", FORM),
        (b"[]", "application/json"),
        (b"\xff\xfe\xfd", FORM),
        (b"[" * 5000 + b"]" * 5000, "application/json"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "application/json"),
    ],
)
async def test_signed_bodies_that_cannot_be_read_are_400(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], body: bytes, content_type: str
) -> None:
    assert (await slack(bot, body, content_type)).status == 400
    assert errors() == []


async def test_a_non_ascii_pagerduty_signature_is_401(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    body = b'{"event": {"event_type": "incident.acknowledged"}}'
    answer = await raw_http(
        bot,
        b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "X-PagerDuty-Signature: v1=é\r\n".encode()
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body,
    )
    assert answer[:12] in (b"HTTP/1.1 401", b"HTTP/1.0 401"), answer[:80]
    assert errors() == []


async def test_a_signed_pagerduty_webhook_nested_5000_deep_is_400(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    body = b'{"event":' * 5000 + b"1" + b"}" * 5000
    assert (await send(bot, "POST", "/webhooks/pagerduty", body, pd_signed(body))).status == 400
    assert errors() == []


async def test_a_bearer_token_that_is_not_utf8_is_401(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    answer = await raw_http(
        bot,
        b"GET /incidents/1/postmortem.md HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xff\xfe\xc3\r\nConnection: close\r\n\r\n",
    )
    assert answer[:12] in (b"HTTP/1.1 401", b"HTTP/1.0 401"), answer[:80]
    assert errors() == []


# -- protocol errors --------------------------------------------------------------------------


async def raw_http(bot: BotHarness, data: bytes, *, close_early: bool = False) -> bytes:
    host, port = bot.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        if close_early:
            writer.transport.abort()
            await asyncio.sleep(0)
            return b""
        return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        b"NOT A REQUEST LINE\r\n\r\n",
        b"POST /slack/events HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nBad Header Without Colon\r\n\r\n",
    ],
)
async def test_malformed_http_is_a_400_and_one_warning_without_traceback(
    bot: BotHarness,
    errors: Callable[[], list[logging.LogRecord]],
    caplog: pytest.LogCaptureFixture,
    request_bytes: bytes,
) -> None:
    answer = await raw_http(bot, request_bytes)
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.0 400"), answer[:80]
    assert errors() == []
    warnings = [
        r for r in caplog.records if r.name == "aiohttp.server" and r.levelno == logging.WARNING
    ]
    assert len(warnings) <= 1


async def test_a_flood_of_malformed_http_is_rate_limited_in_the_log(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(40):
        await raw_http(bot, b"NOT A REQUEST LINE\r\n\r\n")
    warnings = [
        r for r in caplog.records if r.name == "aiohttp.server" and r.levelno == logging.WARNING
    ]
    assert 1 <= len(warnings) <= 10
    assert errors() == []


async def test_a_client_closing_mid_body_is_one_warning_and_no_error(
    bot: BotHarness,
    errors: Callable[[], list[logging.LogRecord]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def hang_ups() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "aiohttp.server"]

    protocol_errors.install().reset()  # one policy per process: earlier tests used its burst

    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    await raw_http(bot, head + b"Content-Length: 5000\r\n\r\n" + b'{"a": 1', close_early=True)
    for _ in range(500):  # the server notices the hang-up on its next turn of the loop
        if hang_ups():
            break
        await asyncio.sleep(0.01)
    (line,) = hang_ups()
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert errors() == []


# -- real Slack traffic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "note at 9999-12-31 23:59 the cache was cold",
        "status resolved at 9999-12-31 23:59",
        "resolve at 0001-01-01 00:00 done",
        "started 9999-12-31 23:59",
        "INC-1 task rotate keys due 9999-12-31",
        "note at 1999-12-31 23:59 before the millennium",
    ],
)
async def test_times_no_incident_can_have_are_refused_with_the_accepted_forms(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], text: str
) -> None:
    before = await timeline_size(bot)
    reply = await bot.command(text, user="U1", channel="C1")
    assert reply.status == 200
    answer = reply.json()
    assert answer["response_type"] == "ephemeral"
    assert "not a date an incident can have" in answer["text"] and "YYYY-MM-DD" in answer["text"]
    await bot.settle()
    assert await timeline_size(bot) == before
    assert errors() == []


def shortcut_on(bot: BotHarness, text: str, channel: str, user: str) -> dict[str, Any]:
    return {
        "type": "message_action",
        "token": "verification_token",
        "team": {"id": "T0001", "domain": "example"},
        "user": {"id": user, "username": "alice", "team_id": "T0001"},
        "channel": {"id": channel, "name": "general"},
        "callback_id": CallbackId.DECLARE_SHORTCUT.value,
        "trigger_id": "333.444.shortcut",
        "message_ts": "1700000000.000100",
        "message": {"type": "message", "text": text, "user": user, "ts": "1700000000.000100"},
        "response_url": bot.emulator.response_url(channel=channel, user=user),
    }


async def test_the_declare_form_opens_on_a_long_non_ascii_message(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    alice = bot.emulator.add_user("alice")
    general = bot.emulator.add_channel("general", members=[alice])
    reply = await bot.interact(shortcut_on(bot, "й" * 600 + " " + "ё" * 3000, general, alice))
    assert reply.status == 200
    await bot.settle()
    (call,) = bot.emulator.calls_to("views.open")
    assert call.ok, call.response
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert len(view["private_metadata"]) <= 3000
    kept = json.loads(view["private_metadata"])["text"]
    assert kept.startswith("й" * 600)
    said = json.dumps(view["blocks"][-1], ensure_ascii=False)
    assert f"{len(kept):,} of 3,601 characters" in said
    assert errors() == []


def with_action(
    bot: BotHarness, action_id: str, value: str, *, channel: str = "C1"
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": "U1", "username": "alice", "team_id": "T0001"},
        "team": {"id": "T0001", "domain": "example"},
        "trigger_id": "111.222.valid",
        "channel": {"id": channel, "name": "inc"},
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": channel},
        "response_url": bot.emulator.response_url(channel=channel, user="U1"),
        "actions": [{"action_id": action_id, "block_id": "b1", "type": "button", "value": value}],
    }


@pytest.mark.parametrize(
    "payload_of",
    [
        lambda bot: with_action(bot, "button-from-an-older-version", "1"),
        lambda bot: {**shortcut_on(bot, "x", "C1", "U1"), "callback_id": "unknown-shortcut"},
        lambda bot: {
            "type": "view_submission",
            "user": {"id": "U1"},
            "team": {"id": "T0001"},
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": "unknown-view",
                "state": {"values": {}},
            },
        },
        lambda bot: {"type": "view_closed", "user": {"id": "U1"}, "view": {"callback_id": "gone"}},
    ],
)
async def test_kinds_without_a_listener_are_acked_200(
    bot: BotHarness,
    errors: Callable[[], list[logging.LogRecord]],
    payload_of: Callable[[BotHarness], dict[str, Any]],
) -> None:
    reply = await bot.interact(payload_of(bot))
    assert reply.status == 200
    await bot.settle()
    assert errors() == []


async def test_unhandled_event_types_are_acked_200(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    reply = await bot.event(
        {"type": "app_home_opened", "user": "U1", "channel": "D1"}, event_id="Ev9"
    )
    assert reply.status == 200
    assert errors() == []


async def test_app_rate_limited_is_acked_and_warned_once(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(
        {
            "token": "t",
            "type": "app_rate_limited",
            "team_id": "T0001",
            "minute_rate_limited": 1518467820,
            "api_app_id": "A0001",
        }
    ).encode()
    for _ in range(3):
        assert (await slack(bot, body, "application/json")).status == 200
    warned = [
        r
        for r in caplog.records
        if r.name.startswith("bot") and "app_rate_limited" in r.getMessage()
    ]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert errors() == []


# -- signed, but nothing Slack sends -----------------------------------------------------------


@pytest.mark.parametrize("field", ["user_id", "trigger_id", "response_url"])
async def test_a_command_missing_a_field_changes_nothing(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], field: str
) -> None:
    form = command_body(
        "declare sev2 Checkout down",
        user_id="U1",
        channel_id="C1",
        response_url=bot.emulator.response_url(),
    )
    body = "&".join(part for part in form.split("&") if not part.startswith(field + "="))
    reply = await slack(bot, body.encode())
    if field == "user_id":
        assert reply.status == 400
    else:
        assert reply.status == 200 and "nothing was done" in reply.json()["text"]
    await bot.settle()
    assert await timeline_size(bot) == 0
    assert errors() == []


@pytest.mark.parametrize("value", ["²", "9" * 30, "-3", "1e3"])
@pytest.mark.parametrize(
    "action_id", [ActionId.ACKNOWLEDGE_PAGE, ActionId.COMPLETE_TASK, ActionId.SNOOZE_REMINDER]
)
async def test_id_buttons_with_values_that_are_no_id_are_answered(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], value: str, action_id: ActionId
) -> None:
    seen = len(bot.emulator.responses)
    reply = await bot.interact(with_action(bot, action_id, value))
    assert reply.status == 200
    await bot.settle()
    (answer,) = bot.emulator.responses[seen:]
    assert answer.args["response_type"] == "ephemeral"
    assert answer.args["text"].startswith("That button does not name ")
    assert errors() == []


async def test_an_empty_action_list_is_answered(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    payload = {**with_action(bot, "x", "1"), "actions": []}
    seen = len(bot.emulator.responses)
    assert (await bot.interact(payload)).status == 200
    await bot.settle()
    assert len(bot.emulator.responses[seen:]) == 1
    assert errors() == []


async def test_an_unknown_severity_in_the_form_is_shown_in_the_form(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    payload = {
        "type": "view_submission",
        "user": {"id": "U1"},
        "team": {"id": "T0001"},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": CallbackId.DECLARE_MODAL.value,
            "private_metadata": "",
            "state": {
                "values": {
                    "title": {"title": {"type": "plain_text_input", "value": "Down"}},
                    "severity": {
                        "severity": {"type": "static_select", "selected_option": {"value": "sev0"}}
                    },
                }
            },
        },
    }
    reply = await bot.interact(payload)
    assert reply.status == 200 and reply.json()["response_action"] == "errors"
    assert "severity" in reply.json()["errors"]
    for metadata in ("[1]", '{"ts": {"a": 1}}'):
        payload["view"]["private_metadata"] = metadata  # type: ignore[index]
        payload["view"]["state"]["values"]["severity"]["severity"]["selected_option"]["value"] = (
            "sev2"  # type: ignore[index]
        )
        reply = await bot.interact(payload)
        assert reply.status == 200 and "title" in reply.json()["errors"]
    await bot.settle()
    assert await timeline_size(bot) == 0
    assert errors() == []


async def test_a_shortcut_with_a_null_message_is_answered_not_crashed(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]]
) -> None:
    seen = len(bot.emulator.responses)
    payload = {**shortcut_on(bot, "x", "C1", "U1"), "message": None}
    assert (await bot.interact(payload)).status == 200
    await bot.settle()
    assert len(bot.emulator.responses[seen:]) == 1
    assert bot.emulator.calls_to("views.open") == []
    assert errors() == []


@pytest.mark.parametrize(
    "event",
    [
        {
            "type": "reaction_added",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": "C1", "ts": "1.1"},
        },
        {
            "type": "reaction_added",
            "user": "U1",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": "C1", "ts": "NaN"},
        },
        {
            "type": "reaction_removed",
            "user": "U1",
            "reaction": "pushpin",
            "item": {"type": "message", "channel": "C1", "ts": "nan"},
        },
    ],
)
async def test_reaction_events_slack_could_not_send_are_400(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], event: dict[str, Any]
) -> None:
    assert (await bot.event(event, event_id="Ev1")).status == 400
    missing_id = json.loads(event_body(event, event_id="Ev2"))
    del missing_id["event_id"]
    assert (await slack(bot, json.dumps(missing_id).encode(), "application/json")).status == 400
    assert await timeline_size(bot) == 0
    assert errors() == []


# -- properties over every entry point ---------------------------------------------------------


@dataclass(frozen=True)
class EntryPoint:
    """An HTTP entry point and how its legitimate callers authenticate a body."""

    name: str
    method: str
    path: str
    authenticate: Callable[[bytes], dict[str, str]]
    templates: tuple[Callable[[BotHarness], bytes], ...] = ()


def _command_template(bot: BotHarness) -> bytes:
    return command_body(
        "INC-1 note the cache is cold",
        user_id="U1",
        channel_id="C1",
        response_url=bot.emulator.response_url(),
    ).encode()


def _action_template(bot: BotHarness) -> bytes:
    return interactivity_body(with_action(bot, ActionId.ACKNOWLEDGE_PAGE, "1")).encode()


def _shortcut_template(bot: BotHarness) -> bytes:
    return interactivity_body(shortcut_on(bot, "Checkout is down", "C1", "U1")).encode()


def _form_template(bot: BotHarness) -> bytes:
    origin = {"channel": "C1", "ts": "1700000000.000100", "user": "U1", "text": "down"}
    return interactivity_body(
        {
            "type": "view_submission",
            "user": {"id": "U1", "team_id": "T0001"},
            "team": {"id": "T0001"},
            "trigger_id": "1.2.3",
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": CallbackId.DECLARE_MODAL.value,
                "private_metadata": json.dumps(origin),
                "state": {
                    "values": {
                        "title": {"title": {"type": "plain_text_input", "value": "Down"}},
                        "severity": {
                            "severity": {
                                "type": "static_select",
                                "selected_option": {"value": "sev2"},
                            }
                        },
                        "private": {"private": {"type": "checkboxes", "selected_options": []}},
                    }
                },
            },
        }
    ).encode()


def _card_menu_template(bot: BotHarness) -> bytes:
    payload = with_action(bot, ActionId.STATUS_SELECT, "")
    payload["actions"] = [
        {
            "action_id": ActionId.STATUS_SELECT.value,
            "block_id": "incident-actions:INC-1",
            "type": "static_select",
            "selected_option": {"value": "monitoring"},
        }
    ]
    return interactivity_body(payload).encode()


def _member_template(bot: BotHarness) -> bytes:
    event = {"type": "member_joined_channel", "user": "U2", "channel": "C1", "team": "T0001"}
    return event_body(event, event_id="Ev2").encode()


def _event_template(bot: BotHarness) -> bytes:
    event = {
        "type": "reaction_added",
        "user": "U1",
        "reaction": "pushpin",
        "item": {"type": "message", "channel": "C1", "ts": "1700000000.000100"},
    }
    return event_body(event, event_id="Ev1").encode()


def _pagerduty_template(bot: BotHarness) -> bytes:
    return json.dumps(
        {
            "event": {
                "event_type": "incident.acknowledged",
                "agent": {"summary": "Pat"},
                "data": {"title": "[INC-1] down", "incident_key": "incident-bot/INC-1/ops"},
            }
        }
    ).encode()


def _github_template(bot: BotHarness) -> bytes:
    return json.dumps(
        {
            "action": "closed",
            "issue": {"number": 1, "state": "closed", "state_reason": "completed", "body": "x"},
            "repository": {"full_name": "acme/infra"},
            "sender": {"login": "octocat"},
        }
    ).encode()


def _jira_template(bot: BotHarness) -> bytes:
    return json.dumps(
        {
            "webhookEvent": "jira:issue_updated",
            "timestamp": 1700000000000,
            "issue": {"key": "OPS-1", "fields": {"status": {"statusCategory": {"key": "done"}}}},
        }
    ).encode()


def _alert_template(bot: BotHarness) -> bytes:
    alert = {
        "status": "firing",
        "labels": {"alertname": "HighErrorRate", "service": "checkout"},
        "annotations": {"summary": "5xx above 5%"},
        "startsAt": "2026-11-25T18:29:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": "f1",
    }
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighErrorRate"}',
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "bot",
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": alert["labels"],
            "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager",
            "alerts": [alert],
        }
    ).encode()


def _alert_bearer(body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {ALERT_TOKEN}"}


def _bearer(body: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {PM_TOKEN}"}


ENTRY_POINTS = [
    EntryPoint(
        "slack commands", "POST", "/slack/events", lambda b: slack_signed(b), (_command_template,)
    ),
    EntryPoint(
        "slack interactions",
        "POST",
        "/slack/events",
        lambda b: slack_signed(b),
        (_action_template, _shortcut_template, _form_template, _card_menu_template),
    ),
    EntryPoint(
        "slack events",
        "POST",
        "/slack/events",
        lambda b: slack_signed(b, "application/json"),
        (_event_template, _member_template),
    ),
    EntryPoint(
        "pagerduty webhook", "POST", "/webhooks/pagerduty", pd_signed, (_pagerduty_template,)
    ),
    EntryPoint("postmortem", "GET", "/incidents/1/postmortem.md", _bearer),
    EntryPoint("github webhook", "POST", "/webhooks/github", github_signed, (_github_template,)),
    EntryPoint("jira webhook", "POST", "/webhooks/jira", jira_signed, (_jira_template,)),
    EntryPoint("alertmanager", "POST", "/webhooks/alertmanager", _alert_bearer, (_alert_template,)),
    EntryPoint("grafana", "POST", "/webhooks/grafana", _alert_bearer, (_alert_template,)),
]
# Other entry points (/webhooks/alertmanager, /webhooks/grafana, /webhooks/github,
# /webhooks/jira) are covered by appending them here with their authentication.

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["²", "9" * 30, "NaN", "", "0", "1", "-1", "sev9", "\u0000", "й" * 50]),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn, template: Any) -> Any:
    """A copy of a JSON value with one field deleted or replaced, somewhere inside."""
    if not isinstance(template, dict | list) or not template or draw(st.integers(0, 4)) == 0:
        return draw(json_value)
    if isinstance(template, dict):
        key = draw(st.sampled_from(sorted(template)))
        copy = dict(template)
        if draw(st.booleans()) and len(copy) > 1:
            del copy[key]
        else:
            copy[key] = draw(mutated(template[key]))
        return copy
    index = draw(st.integers(0, len(template) - 1))
    return [*template[:index], draw(mutated(template[index])), *template[index + 1 :]]


def _mutate_body(draw: st.DrawFn, raw: bytes) -> bytes:
    text = raw.decode()
    if text.startswith("{"):
        return json.dumps(draw(mutated(json.loads(text)))).encode()
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        payload = draw(mutated(json.loads(form["payload"])))
        return urlencode({"payload": json.dumps(payload)}).encode()
    key = draw(st.sampled_from(sorted(form)))
    if draw(st.booleans()):
        del form[key]
    else:
        form[key] = draw(st.text(max_size=40))
    return urlencode(form).encode()


@st.composite
def requests(draw: st.DrawFn, bot: BotHarness) -> tuple[EntryPoint, bytes, dict[str, str], bool]:
    """(entry point, body, headers, signed): random bytes, random JSON or a mutated real body."""
    entry = draw(st.sampled_from(ENTRY_POINTS))
    kind = draw(
        st.sampled_from(["bytes", "json", "mutated"] if entry.templates else ["bytes", "json"])
    )
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(json_value)).encode()
    else:
        body = _mutate_body(draw, draw(st.sampled_from(entry.templates))(bot))
    signed = draw(st.booleans())
    headers = (
        entry.authenticate(body)
        if signed
        else {"Content-Type": draw(st.sampled_from([FORM, "application/json", "text/plain"]))}
    )
    return entry, body, headers, signed


async def with_an_incident(bot: BotHarness) -> None:
    """INC-1 exists, so that mutated requests reach the use cases, not only the parser."""
    if await timeline_size(bot) == 0:
        reply = await bot.command("declare sev2 Checkout is down", user="U1", channel="C1")
        assert reply.status == 200
        await bot.settle()


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@PROPERTY
@given(data=st.data())
async def test_every_entry_point_answers_hostile_requests_without_a_5xx(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], data: st.DataObject
) -> None:
    await with_an_incident(bot)
    entry, body, headers, signed = data.draw(requests(bot))
    before = await timeline_size(bot)
    answer = await send(bot, entry.method, entry.path, body, headers)
    assert answer.status < 500, (entry.name, body[:200], answer.text[:200])
    if not signed:
        assert answer.status in (401, 404), (entry.name, answer.status)
    await bot.settle()
    if answer.status >= 400:
        assert await timeline_size(bot) == before, (entry.name, body[:200])
    assert errors() == [], [r.getMessage() for r in errors()]


command_words = st.sampled_from(
    [
        "note",
        "status",
        "resolved",
        "at",
        "due",
        "task",
        "started",
        "resolve",
        "sev",
        "sev2",
        "declare",
        "INC-1",
        "INC-99999999999",
        "9999-12-31",
        "0001-01-01",
        "23:59",
        "12:00",
        "AM",
        "<@U1>",
        "@bob",
        "role",
        "commander",
        "page",
        "update",
        "impact",
        "cause",
        "help",
        "list",
        "timeline",
        "¹²³",
        "é",
    ]
)
command_texts = st.one_of(st.lists(command_words, max_size=6).map(" ".join), st.text(max_size=60))


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=command_texts)
async def test_every_command_gets_an_answer(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], text: str
) -> None:
    seen = len(bot.emulator.responses)
    reply = await bot.command(text, user="U1", channel="C1")
    assert reply.status == 200, reply.text
    await bot.settle()
    answered = (
        bool(reply.text)
        or len(bot.emulator.responses) > seen
        or bot.emulator.calls_to("views.open")
    )
    assert answered, text
    assert errors() == [], [r.getMessage() for r in errors()]


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_suggestion", "user": {"id": "U1"}, "value": "x"},
        {"type": "block_suggestion", "user": {"id": "U1"}, "action_id": "a", "block_id": "b"},
        {"type": "interactive_message", "user": {"id": "U1"}, "actions": [{"name": "x"}]},
        {"type": "dialog_submission", "user": {"id": "U1"}, "submission": {}},
        {"type": "dialog_cancellation", "callback_id": 5},
        {"type": "view_closed", "user": {"id": "U1"}},
        {"type": "view_closed", "user": {"id": "U1"}, "view": {"type": "modal"}},
        {"type": "workflow_step_edit", "callback_id": "x"},
        {"type": "shortcut", "user": {"id": "U1"}, "trigger_id": "1", "callback_id": "x"},
        {"type": "block_actions", "user": {"id": "U1"}, "trigger_id": "1", "actions": [{}]},
        {"type": None},
        {},
    ],
)
async def test_odd_interactive_kinds_are_acked_or_refused_never_a_5xx(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], payload: dict[str, Any]
) -> None:
    reply = await bot.interact(payload)
    assert reply.status in (200, 400), reply.text
    await bot.settle()
    assert errors() == []


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "channel": "C1", "user": "U1", "text": "hi", "ts": "1.2"},
        {"type": "message", "subtype": "message_changed", "message": "x"},
        {"type": "message", "subtype": "message_changed", "message": {"user": 5}},
        {"type": "function_executed", "function_execution_id": "Fx1", "inputs": 5},
        {"type": "app_mention", "user": "U1", "text": "<@UBOT> hi", "channel": "C1"},
        {"type": "member_joined_channel", "user": "U1", "channel": "C1"},
        {"type": 7},
    ],
)
async def test_odd_events_are_acked_or_refused_never_a_5xx(
    bot: BotHarness, errors: Callable[[], list[logging.LogRecord]], event: dict[str, Any]
) -> None:
    reply = await bot.event(event, event_id="Ev5")
    assert reply.status in (200, 400), reply.text
    await bot.settle()
    assert errors() == []
