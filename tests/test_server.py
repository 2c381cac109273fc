"""The HTTP surface: signature checks, size limits, health, metrics, `/incident help`."""

from __future__ import annotations

import gc
import json
import time

from bot.core import grammar
from bot.wiring import GC_THRESHOLDS, settle_memory
from tests.conftest import BotHarness
from tests.scrape import scrape
from tests.slack_requests import load_payload, signature

FORM = "application/x-www-form-urlencoded"


def test_signature_matches_slacks_published_example() -> None:
    from pathlib import Path

    vector_path = (
        Path(__file__).resolve().parents[2] / "shared/slack/reference/signature_test_vector.json"
    )
    vector = json.loads(vector_path.read_text())
    assert (
        signature(vector["signing_secret"], vector["timestamp"], vector["body"])
        == vector["expected_signature"]
    )


async def test_help_answers_in_the_ack_with_the_usage(bot: BotHarness) -> None:
    reply = await bot.command("help", user="UALICE")
    assert reply.status == 200
    body = reply.json()
    assert body["response_type"] == "ephemeral"
    for usage in ("declare", "status investigating|identified|monitoring|resolved", "postmortem"):
        assert usage in body["text"]
    assert body["text"] == grammar.HELP_TEXT
    # Help costs no Web API call at all.
    assert [c.method for c in bot.emulator.calls if c.method != "auth.test"] == []


async def test_bare_command_is_help(bot: BotHarness) -> None:
    reply = await bot.command("", user="UALICE")
    assert reply.json()["text"] == grammar.HELP_TEXT


async def test_unknown_subcommand_gets_ephemeral_help_not_an_error(bot: BotHarness) -> None:
    reply = await bot.command("frobnicate now", user="UALICE")
    assert reply.status == 200
    body = reply.json()
    assert body["response_type"] == "ephemeral"
    assert "frobnicate" in body["text"]
    assert grammar.HELP_TEXT in body["text"]


async def test_unsigned_request_is_refused(bot: BotHarness) -> None:
    reply = await bot.post("text=help&command=%2Fincident", content_type=FORM, signed=False)
    assert reply.status == 401


async def test_badly_signed_request_is_refused(bot: BotHarness) -> None:
    bot.secret = "not-the-signing-secret"
    reply = await bot.command("help", user="UALICE")
    assert reply.status == 401


async def test_tampered_body_is_refused(bot: BotHarness) -> None:
    body = "command=%2Fincident&text=help&user_id=UALICE"
    ts = str(int(time.time()))
    headers = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(bot.secret, ts, body),
    }
    async with bot.http.post(
        bot.url + "/slack/events", data=(body + "x").encode(), headers=headers
    ) as response:
        assert response.status == 401


async def test_stale_request_is_refused_as_a_replay(bot: BotHarness) -> None:
    reply = await bot.post(
        "command=%2Fincident&text=help", content_type=FORM, timestamp=int(time.time()) - 301
    )
    assert reply.status == 401


async def test_request_from_the_future_is_refused(bot: BotHarness) -> None:
    reply = await bot.post(
        "command=%2Fincident&text=help", content_type=FORM, timestamp=int(time.time()) + 3600
    )
    assert reply.status == 401


async def test_body_over_one_mebibyte_is_refused_with_413(bot: BotHarness) -> None:
    body = "command=%2Fincident&text=" + "a" * (1024 * 1024)
    reply = await bot.post(body, content_type=FORM)
    assert reply.status == 413


async def test_url_verification_challenge_from_bolt_payloads(bot: BotHarness) -> None:
    body = load_payload("tests__adapter_tests__asgi__test_asgi_http__body_data__L206.json")
    reply = await bot.post(body, content_type="application/json")
    assert reply.status == 200
    assert json.loads(body)["challenge"] in reply.text


async def test_healthz_reports_the_database(bot: BotHarness) -> None:
    async with bot.http.get(bot.url + "/healthz") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "database": "ok"}


async def test_healthz_is_503_when_the_database_is_gone(bot: BotHarness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from bot.db.engine import make_engine

    good = bot.services.engine
    bot.services.engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    try:
        async with bot.http.get(bot.url + "/healthz") as response:
            assert response.status == 503
            body = await response.json()
            assert body["status"] == "unavailable"
            assert body["database"]
    finally:
        await bot.services.engine.dispose()
        bot.services.engine = good


async def test_metrics_count_requests(bot: BotHarness) -> None:
    await bot.command("help", user="UALICE")
    metrics = await scrape(bot)
    assert metrics.value("http_requests_total", path="/slack/events", status="200") == 1
    assert metrics.value("slack_ack_seconds_count") == 1


async def test_unknown_path_is_404(bot: BotHarness) -> None:
    async with bot.http.get(bot.url + "/nope") as response:
        assert response.status == 404


def test_a_started_process_settles_its_memory() -> None:
    """Start-up's objects are frozen out of the collector's sight and young objects are
    collected less often: full collections stall a burst of acks far less (bench/ack_latency)."""
    before = gc.get_threshold()
    try:
        settle_memory()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
