"""`python -m bot …` as an operator runs it: exit codes, one-line errors, start and stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.emulator import SlackEmulator
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.processes import wait_healthy

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_"))}
    env["PYTHONPATH"] = str(ROOT)
    env["PLAYBOOKS_DIR"] = str(ROOT / "playbooks")
    env.update(values)
    return env


async def run_bot(
    *args: str, env: dict[str, str], cwd: Path, seconds: float = 60
) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), seconds)
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    emu = SlackEmulator(bot_token=BOT_TOKEN)
    await emu.start(host="127.0.0.1", port=0)
    yield emu
    await emu.stop()


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({"SLACK_SIGNING_SECRET": SIGNING_SECRET}, "SLACK_BOT_TOKEN", "OAuth & Permissions"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_SIGNING_SECRET", "Basic Information"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-your-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET},
            "SLACK_BOT_TOKEN",
            "placeholder",
        ),
        (
            {"SLACK_BOT_TOKEN": "not-a-token", "SLACK_SIGNING_SECRET": SIGNING_SECRET},
            "SLACK_BOT_TOKEN",
            "xoxb-",
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "changeme"},
            "SLACK_SIGNING_SECRET",
            "placeholder",
        ),
        (
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "INCIDENT_TIMEZONE": "Mars/Olympus",
            },
            "INCIDENT_TIMEZONE",
            "IANA",
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "PORT": "http"},
            "PORT",
            "integer",
        ),
        (
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "DATABASE_URL": "mysql://root@localhost/x",
            },
            "DATABASE_URL",
            "sqlite+aiosqlite",
        ),
        (
            {
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "DATABASE_URL": "::not a url::",
            },
            "DATABASE_URL",
            "database URL",
        ),
    ],
)
async def test_bad_configuration_exits_2_with_one_line(
    tmp_path: Path, env: dict[str, str], variable: str, hint: str
) -> None:
    code, output = await run_bot("serve", env=base_env(**env), cwd=tmp_path)
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert variable in lines[0] and hint in lines[0]
    assert "Traceback" not in output


async def test_settings_are_read_from_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"SLACK_BOT_TOKEN={BOT_TOKEN}\n")
    code, output = await run_bot("serve", env=base_env(), cwd=tmp_path)
    assert code == 2
    assert "SLACK_SIGNING_SECRET" in output  # the token came from .env; the secret is next


async def test_unreachable_database_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        DATABASE_URL=f"postgresql+asyncpg://postgres:s3cretpw@127.0.0.1:{free_port()}/test",
    )
    code, output = await run_bot("serve", env=env, cwd=tmp_path)
    assert code == 1, output
    assert "unavailable" in output and "127.0.0.1" in output
    assert "s3cretpw" not in output
    assert "Traceback" not in output


async def test_database_without_migrations_asks_for_db_upgrade(tmp_path: Path) -> None:
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/fresh.db",
    )
    code, output = await run_bot("serve", env=env, cwd=tmp_path)
    assert code == 1, output
    assert "python -m bot db upgrade" in output


async def test_token_refused_by_slack_exits_2(tmp_path: Path, slack: SlackEmulator) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    assert (await run_bot("db", "upgrade", env=base_env(DATABASE_URL=db), cwd=tmp_path))[0] == 0
    env = base_env(
        SLACK_BOT_TOKEN="xoxb-revoked-0000",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.url,
        DATABASE_URL=db,
        PORT=str(free_port()),
    )
    code, output = await run_bot("serve", env=env, cwd=tmp_path)
    assert code == 2, output
    assert "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in output
    assert "xoxb-revoked-0000" not in output


async def test_serve_starts_answers_health_and_stops_on_sigterm_without_leaking_secrets(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    code, output = await run_bot("db", "upgrade", env=base_env(DATABASE_URL=db), cwd=tmp_path)
    assert code == 0, output
    port = free_port()
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.url,
        DATABASE_URL=db,
        PORT=str(port),
        HOST="127.0.0.1",
        LOG_LEVEL="DEBUG",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(port, 30)
            from tests.slack_requests import command_body, signed_headers

            body = command_body(
                "help", user_id="UALICE", channel_id="C1", response_url=slack.response_url()
            )
            headers = signed_headers(
                SIGNING_SECRET, body, content_type="application/x-www-form-urlencoded"
            )
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
            ) as r:
                assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    logs = (out + err).decode()
    assert "serving on" in logs and "stopped" in logs
    assert BOT_TOKEN not in logs
    assert SIGNING_SECRET not in logs


async def test_socket_mode_without_an_app_token_exits_2(tmp_path: Path) -> None:
    env = base_env(SLACK_BOT_TOKEN=BOT_TOKEN)
    code, output = await run_bot("socket", env=env, cwd=tmp_path)
    assert code == 2, output
    assert "SLACK_APP_TOKEN is not set" in output and "connections:write" in output
    assert "Traceback" not in output


async def test_the_worker_makes_the_calls_a_commit_owes_and_stops_on_sigterm(
    tmp_path: Path, slack: SlackEmulator
) -> None:
    """A side effect committed by some `serve` (here: written straight into the outbox)."""
    import sqlite3

    db_file = tmp_path / "bot.db"
    db = f"sqlite+aiosqlite:///{db_file}"
    assert (await run_bot("db", "upgrade", env=base_env(DATABASE_URL=db), cwd=tmp_path))[0] == 0
    bob = slack.add_user("bob")
    with sqlite3.connect(db_file) as conn:
        conn.execute(
            "INSERT INTO side_effect (kind, payload, created_at, due_at, attempts, failed)"
            " VALUES ('post', ?, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 0, 0)",
            (f'{{"to": "{bob}", "text": "from the worker"}}',),
        )
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack.url, DATABASE_URL=db, PORT=str(free_port())
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "worker",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not slack.calls_to("chat.postMessage"):
            assert time.monotonic() < deadline, "the worker never made the call"
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (out + err).decode()
    (call,) = slack.calls_to("chat.postMessage")
    assert call.args["channel"] == bob and call.args["text"] == "from the worker"
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT done_at IS NOT NULL FROM side_effect").fetchone() == (1,)


async def test_serve_refuses_invalid_playbooks_with_every_problem(tmp_path: Path) -> None:
    env = base_env(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        PLAYBOOKS_DIR=str(ROOT / "tests" / "playbooks_broken"),
    )
    code, output = await run_bot("serve", env=env, cwd=tmp_path)
    assert code == 2, output
    assert "unknown_role.yaml:9: escalation[1].page[1]: unknown role `dba`" in output
    assert (
        "duration_words.yaml:7: escalation[0].after: `5 minutes` is not a duration — write `5m`"
        in output
    )
    assert "Traceback" not in output
    offline = base_env()  # no token: the files alone are checked
    checked, _ = await run_bot(
        "playbooks", "check", str(ROOT / "tests" / "playbooks_broken"), env=offline, cwd=tmp_path
    )
    assert checked == 1
    fine, said = await run_bot(
        "playbooks", "check", str(ROOT / "playbooks"), env=offline, cwd=tmp_path
    )
    assert fine == 0 and "playbooks OK" in said


async def test_playbooks_check_still_checks_the_files_when_slack_cannot_be_asked(
    tmp_path: Path,
) -> None:
    env = base_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=f"http://127.0.0.1:{free_port()}/api/")
    code, output = await run_bot(
        "playbooks", "check", str(ROOT / "playbooks"), env=env, cwd=tmp_path
    )
    assert code == 0, output
    assert "Slack handles not checked" in output and "playbooks OK" in output
    assert "Traceback" not in output
