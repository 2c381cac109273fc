"""Logs: LOG_FORMAT=json writes one JSON object per line, lines about an incident name it,
and no secret ever reaches them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.emulator import SlackEmulator
from bot.errors import ConfigError
from bot.logs import configure_logging, working_on
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.processes import wait_healthy
from tests.slack_requests import command_body, signed_headers
from tests.test_cli import base_env, free_port, run_bot

WEBHOOK_SECRET = "pd-webhook-secret-5f1e2d3c"


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(bot_token=BOT_TOKEN)
    await emu.start(host="127.0.0.1", port=0)
    yield emu
    await emu.stop()


async def until(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_json_lines_name_the_incident_and_hold_no_secret(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    assert (await run_bot("db", "upgrade", env=base_env(DATABASE_URL=db), cwd=tmp_path))[0] == 0
    alice = slack.add_user("alice")
    port = free_port()
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        PAGERDUTY_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SLACK_API_URL=slack.url,
        DATABASE_URL=db,
        PORT=str(port),
        HOST="127.0.0.1",
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
    )
    # Into files, not pipes: at DEBUG a pipe nobody reads yet would fill and block the server.
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("wb") as out_file, stderr.open("wb") as err_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            env=env,
            cwd=tmp_path,
            stdout=out_file,
            stderr=err_file,
        )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(port, 30)

            async def command(text: str, channel: str) -> None:
                body = command_body(
                    text, user_id=alice, channel_id=channel, response_url=slack.response_url()
                )
                headers = signed_headers(
                    SIGNING_SECRET, body, content_type="application/x-www-form-urlencoded"
                )
                async with http.post(
                    f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
                ) as response:
                    assert response.status == 200

            await command("declare sev2 Checkout is down", "CGENERAL")
            await until(lambda: bool(slack.calls_to("pins.add")), "the card was never pinned")
            channel = slack.calls_to("conversations.create")[0].response["channel"]["id"]
            posts = len(slack.calls_to("chat.postMessage"))
            await command("note rolled back the deploy", channel)
            await until(lambda: len(slack.calls_to("chat.postMessage")) > posts, "note not posted")
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    out, err = stdout.read_bytes(), stderr.read_bytes()
    assert proc.returncode == 0, err.decode()
    output = (out + err).decode()
    for secret in (BOT_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET):
        assert secret not in output

    lines = [json.loads(line) for line in err.decode().splitlines()]  # every line is JSON
    assert out == b""
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert {line["level"] for line in lines} <= {"DEBUG", "INFO", "WARNING"}
    about = [line for line in lines if line.get("incident") == "INC-1"]
    messages = [(line["logger"], line["message"]) for line in about]
    assert ("bot.usecases.declaring", f"declared (sev2, from command) by {alice}") in messages
    assert ("bot.usecases.entries", f"recorded note by {alice}") in messages
    assert ("bot.effect_runner", "create_channel #1 done") in messages
    assert any(logger.startswith("slack_sdk") for logger, _ in messages)  # library lines too
    # Whatever mentions the incident carries its number, and nothing names another one.
    assert all(line.get("incident") == "INC-1" for line in lines if "INC-1" in line["message"])
    assert {line["incident"] for line in lines if "incident" in line} == {"INC-1"}
    assert any(line["message"] == f"serving on http://127.0.0.1:{port}" for line in lines)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """configure_logging writing to a buffer; the test runner's handlers are put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_an_exception_is_one_json_line_with_its_traceback_masked(captured: io.StringIO) -> None:
    configure_logging(level="INFO", secrets=["hunter2-secret"], format="json", stream=captured)
    log = logging.getLogger("bot.test")
    with working_on("INC-42"):
        try:
            raise RuntimeError("token hunter2-secret refused; xoxb-9999-leaked")
        except RuntimeError:
            log.exception("call failed\nwith %s", "hunter2-secret")
    log.info("outside")
    first, second = lines_of(captured)
    assert first["level"] == "ERROR" and first["incident"] == "INC-42"
    assert first["message"] == "call failed\nwith ***"
    assert "RuntimeError: token *** refused; ***" in first["exc"]
    assert "hunter2-secret" not in captured.getvalue() and "xoxb-9999" not in captured.getvalue()
    assert second["message"] == "outside" and "incident" not in second and "exc" not in second
    assert first["time"].endswith("+00:00")


def test_text_lines_show_the_incident_too(captured: io.StringIO) -> None:
    configure_logging(level="INFO", secrets=[], format="text", stream=captured)
    with working_on("INC-7"):
        logging.getLogger("bot.test").warning("slow")
    assert captured.getvalue().rstrip().endswith("WARNING bot.test: [INC-7] slow")


def test_an_unknown_log_format_is_a_configuration_error(captured: io.StringIO) -> None:
    with pytest.raises(ConfigError, match="LOG_FORMAT is `xml` — write text or json"):
        configure_logging(level="INFO", secrets=[], format="xml", stream=captured)
