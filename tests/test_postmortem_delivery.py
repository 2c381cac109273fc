"""Delivering the postmortem draft: the Slack upload, the command line and the HTTP endpoint.

The three must hand out the same bytes. The upload goes through the files upload v2 flow
(files.getUploadURLExternal, the upload itself, files.completeUploadExternal) into the
incident's channel, with a short summary as its comment; the CLI runs as an operator runs
it (`python -m bot postmortem INC-1`, a subprocess, on the same SQLite file); the endpoint
answers only holders of POSTMORTEM_TOKEN and tells nobody else whether an incident exists.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
import yarl

from bot import usecases
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, EntrySource
from bot.core.postmortem import DRAFT_LINE
from bot.db.models import Incident, SideEffect, TimelineEntry
from bot.db.repo import IncidentRepo
from bot.emulator import SlackEmulator
from bot.emulator.state import StoredFile
from bot.outbox import EffectKind
from tests.conftest import BOT_TOKEN, BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import reply_to as run
from tests.slack_schema import assert_all_calls_valid

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "pm-token-0123456789abcdef"
ZONE = "America/Los_Angeles"
UNAUTHORIZED = {"error": "a valid POSTMORTEM_TOKEN is required"}


@dataclass
class People:
    alice: str
    bob: str


@dataclass
class Delivery:
    """The bot with POSTMORTEM_TOKEN set, and the SQLite file it runs on."""

    bot: BotHarness
    database_url: str


@pytest.fixture
def people(emulator: SlackEmulator) -> People:
    return People(
        alice=emulator.add_user("alice", real_name="Alice Smith"),
        bob=emulator.add_user("bob", real_name="Bob Jones"),
    )


@asynccontextmanager
async def running(
    database_url: str, emulator: SlackEmulator, clock: FakeClock, **extra: str
) -> AsyncIterator[Delivery]:
    settings = make_settings(database_url=database_url, api_url=emulator.url, **extra)
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    try:
        yield Delivery(harness, database_url)
    finally:
        await stop_bot(harness, runner)


@pytest.fixture
async def delivery(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[Delivery]:
    async with running(sqlite_url, emulator, clock, POSTMORTEM_TOKEN=TOKEN) as started:
        yield started


@pytest.fixture
async def bot(delivery: Delivery) -> BotHarness:
    return delivery.bot


# -- helpers ------------------------------------------------------------------------------


async def declare(bot: BotHarness, user: str, text: str = "sev1 Checkout latency spike") -> str:
    await run(bot, f"declare {text}", user=user, answers=2)
    async with bot.services.sessions() as session:
        number = await IncidentRepo(session).next_number() - 1
    found = await incident(bot, number)
    assert found.channel_id is not None
    return found.channel_id


async def incident(bot: BotHarness, number: int) -> Incident:
    async with bot.services.sessions() as session:
        found = await IncidentRepo(session).by_number(number)
    assert found is not None
    return found


def uploads(emulator: SlackEmulator, channel: str | None = None) -> list[StoredFile]:
    """Files whose upload completed (into `channel`), in upload order."""
    return [
        f
        for f in emulator.state.files.values()
        if f.completed and (channel is None or channel in f.channels)
    ]


def content(file: StoredFile) -> bytes:
    assert file.content is not None
    return file.content


async def a_full_incident(bot: BotHarness, clock: FakeClock, people: People) -> str:
    """Declared, worked on and resolved: its draft no longer depends on the time it is read."""
    channel = await declare(bot, people.alice)
    a, b = people.alice, people.bob
    clock.advance(timedelta(minutes=5))
    await run(bot, "note at 10:27 AM p99 latency above 2 s", user=b, channel=channel)
    await run(bot, f"note <@{a}> rolled back deploy 4411", user=b, channel=channel)
    await run(bot, f"role scribe <@{b}>", user=a, channel=channel)
    await run(bot, "impact 30% of checkouts slow for 40 minutes", user=b, channel=channel)
    await run(bot, "cause deploy 4411 disabled the cache", user=b, channel=channel)
    await run(bot, "resolution rolled back 4411", user=b, channel=channel)
    await run(bot, "measure Alert on cache hit rate", user=a, channel=channel)
    await run(bot, f"task Add a cache alarm <@{b}> due 2026-12-01", user=a, channel=channel)
    clock.advance(timedelta(minutes=10))
    await run(bot, "resolve rollback done", user=a, channel=channel)
    return channel


def cli_env(tmp_path: Path, database_url: str, **values: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_", "POSTMORTEM_", "INCIDENT"))
    }
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=database_url, INCIDENT_TIMEZONE=ZONE)
    env.update(values)
    return env


async def cli(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, bytes, str]:
    """`python -m bot …` as a subprocess; the event loop (and the emulator) keeps running."""
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
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


async def fetch(
    bot: BotHarness, path: str, *, token: str | None = None, query: bool = False
) -> tuple[int, str, str, bytes]:
    """GET `path` (sent as is, not normalised); status, content type, charset, body."""
    headers = {}
    if token is not None and not query:
        headers["Authorization"] = f"Bearer {token}"
    if token is not None and query:
        path += f"?token={quote(token)}"
    url = yarl.URL(bot.url + path, encoded=True)
    async with bot.http.get(url, headers=headers) as response:
        body = await response.read()
        return response.status, response.content_type, response.charset or "", body


# -- `/incident postmortem` ---------------------------------------------------------------


async def test_postmortem_command_uploads_the_draft_with_a_summary(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await a_full_incident(bot, clock, people)
    assert len(uploads(emulator)) == 1  # the resolution already posted one
    calls = len(emulator.calls)

    said = await run(bot, "postmortem", user=people.bob, channel=channel)
    assert said == f"The postmortem draft of INC-1 is on its way to <#{channel}>."

    made = [c.method for c in emulator.calls[calls:]]
    assert made.count("files.getUploadURLExternal") == 1
    assert made.count("files.completeUploadExternal") == 1
    assert made.index("files.getUploadURLExternal") < made.index("files.completeUploadExternal")
    assert "chat.postMessage" not in made  # the summary travels with the file

    get_url = emulator.calls_to("files.getUploadURLExternal")[-1]
    complete = emulator.calls_to("files.completeUploadExternal")[-1]
    assert get_url.ok and complete.ok, (get_url.response, complete.response)
    assert get_url.args["filename"] == "INC-1-postmortem.md"
    assert complete.args["channel_id"] == channel
    comment = str(complete.args["initial_comment"])
    assert comment.startswith(":memo: Postmortem draft for *INC-1*: lasted 15 minutes.")
    assert "/incident postmortem" in comment and len(comment) < 500
    assert "DRAFT" not in comment

    last = uploads(emulator, channel)[-1]
    assert last.name == "INC-1-postmortem.md"
    assert last.title == "INC-1 postmortem draft"
    assert last.channels == [channel]
    assert int(get_url.args["length"]) == len(content(last))
    # Shared in the channel as one message carrying the file and the summary.
    shared = [m for m in emulator.channel(channel).messages if last.id in m.files]
    assert [m.text for m in shared] == [comment]

    markdown = content(last).decode("utf-8")
    assert markdown.startswith("# Postmortem: INC-1 — Checkout latency spike\n")
    assert DRAFT_LINE not in markdown
    for heading in (
        "## Issue Summary.",
        "### Timeline:",
        "### Root Cause and Resolution:",
        "### Corrective and Preventative Measures:",
        "### Specific tasks:",
    ):
        assert heading in markdown
    assert "* 10:27 AM PST: p99 latency above 2 s (bob)" in markdown
    assert "* 10:35 AM PST: @alice rolled back deploy 4411" in markdown
    assert "* Add a cache alarm — owner bob, due 2026-12-01" in markdown
    assert people.alice not in markdown and people.bob not in markdown
    assert_all_calls_valid(emulator.calls)


async def test_uploaded_bytes_equal_the_cli_and_the_http_endpoint(
    delivery: Delivery,
    emulator: SlackEmulator,
    clock: FakeClock,
    people: People,
    tmp_path: Path,
) -> None:
    bot = delivery.bot
    channel = await a_full_incident(bot, clock, people)
    await run(bot, "postmortem", user=people.alice, channel=channel)
    uploaded = content(uploads(emulator, channel)[-1])
    assert content(uploads(emulator, channel)[0]) == uploaded  # nothing changed in between

    # The CLI with Slack set up: it looks names up in the same workspace.
    out = tmp_path / "with-slack.md"
    env = cli_env(
        tmp_path, delivery.database_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=emulator.url
    )
    users_info = len(emulator.calls_to("users.info"))
    code, stdout, stderr = await cli("postmortem", "INC-1", "-o", str(out), env=env, cwd=tmp_path)
    assert code == 0, stderr
    assert out.read_bytes() == uploaded
    assert stderr.strip() == f"wrote {out}"
    assert stdout == b""
    assert len(emulator.calls_to("users.info")) > users_info  # it did ask Slack

    # Without any Slack configuration: names remembered in the database.
    env = cli_env(tmp_path, delivery.database_url)
    out = tmp_path / "offline.md"
    calls = len(emulator.calls)
    code, stdout, stderr = await cli("postmortem", "INC-1", "-o", str(out), env=env, cwd=tmp_path)
    assert code == 0, stderr
    assert out.read_bytes() == uploaded
    assert len(emulator.calls) == calls
    # To stdout: the same bytes, and nothing else on it.
    code, stdout, stderr = await cli("postmortem", "inc-1", env=env, cwd=tmp_path)
    assert code == 0, stderr
    assert stdout == uploaded
    assert stderr == ""

    # The HTTP endpoint, with the token in the header or in the query.
    for query in (False, True):
        status, kind, charset, body = await fetch(
            bot, "/incidents/1/postmortem.md", token=TOKEN, query=query
        )
        assert (status, kind, charset.lower()) == (200, "text/markdown", "utf-8")
        assert body == uploaded
    assert_all_calls_valid(emulator.calls)


async def test_an_ongoing_incident_gets_a_draft_marked_as_such(
    delivery: Delivery, emulator: SlackEmulator, clock: FakeClock, people: People, tmp_path: Path
) -> None:
    bot = delivery.bot
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=20))
    await run(bot, "note cache hit rate dropped", user=people.bob, channel=channel)
    said = await run(bot, "postmortem", user=people.bob, channel=channel)
    assert said == f"The postmortem draft of INC-1 is on its way to <#{channel}>."

    [upload] = uploads(emulator, channel)
    markdown = content(upload).decode()
    assert markdown.split("\n\n")[:2] == [
        "# Postmortem: INC-1 — Checkout latency spike",
        "DRAFT — incident ongoing",
    ]
    assert "ongoing since 10:30 AM PST (20 minutes so far)" in markdown
    comment = str(emulator.calls_to("files.completeUploadExternal")[-1].args["initial_comment"])
    assert "ongoing since 2026-11-25 10:30 AM PST (DRAFT)" in comment

    # The CLI says the same of it (its "so far" is the real clock's).
    code, stdout, stderr = await cli(
        "postmortem", "INC-1", env=cli_env(tmp_path, delivery.database_url), cwd=tmp_path
    )
    assert code == 0, stderr
    assert stdout.decode().split("\n\n")[1] == DRAFT_LINE
    status, _, _, body = await fetch(bot, "/incidents/1/postmortem.md", token=TOKEN)
    assert status == 200 and DRAFT_LINE in body.decode()
    assert_all_calls_valid(emulator.calls)


async def test_postmortem_of_an_incident_that_is_not_there(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    await declare(bot, people.alice)
    said = await run(bot, "INC-99 postmortem", user=people.alice)
    assert said == "There is no incident INC-99."
    said = await run(bot, "postmortem", user=people.alice, channel="CGENERAL")
    assert said.startswith("This is not an incident channel: name the incident first")
    assert uploads(emulator) == []
    assert emulator.calls_to("files.getUploadURLExternal") == []
    async with bot.services.sessions() as session:
        owed = await session.execute(
            sa.select(sa.func.count())
            .select_from(SideEffect)
            .where(SideEffect.kind == EffectKind.UPLOAD_POSTMORTEM)
        )
    assert owed.scalar() == 0
    # Named from elsewhere, it goes to the incident's own channel.
    said = await run(bot, "INC-1 postmortem", user=people.bob)
    channel = (await incident(bot, 1)).channel_id or ""
    assert said == f"The postmortem draft of INC-1 is on its way to <#{channel}>."
    assert len(uploads(emulator, channel)) == 1
    assert_all_calls_valid(emulator.calls)


async def test_an_outsider_gets_no_postmortem_of_a_private_incident(
    bot: BotHarness, emulator: SlackEmulator, people: People
) -> None:
    await usecases.declare(
        bot.services,
        actor=people.alice,
        declaration=usecases.Declaration(title="Payroll data exposed", private=True),
    )
    await bot.settle()
    said = await run(bot, "INC-1 postmortem", user=people.bob)
    assert said == "There is no incident INC-1."
    assert uploads(emulator) == []
    said = await run(bot, "INC-1 postmortem", user=people.alice)
    assert said.startswith("The postmortem draft of INC-1 is on its way")
    [upload] = uploads(emulator)
    assert upload.channels == [(await incident(bot, 1)).channel_id]
    assert_all_calls_valid(emulator.calls)


# -- resolving posts the draft ------------------------------------------------------------


async def test_resolving_posts_the_draft_once_per_resolution(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=30))
    await run(bot, "note rollback started", user=people.bob, channel=channel)
    assert uploads(emulator) == []

    await run(bot, "resolve", user=people.alice, channel=channel)
    [first] = uploads(emulator, channel)
    assert first.name == "INC-1-postmortem.md"
    assert DRAFT_LINE not in content(first).decode()
    assert "lasted 30 minutes" in str(
        emulator.calls_to("files.completeUploadExternal")[-1].args["initial_comment"]
    )

    # Later changes do not post it again.
    await run(bot, "impact checkout slow", user=people.bob, channel=channel)
    await run(bot, "started 10:10", user=people.alice, channel=channel)
    assert len(uploads(emulator)) == 1

    # Reopened and resolved again: one more, with what was added since.
    await run(bot, "status investigating still failing", user=people.alice, channel=channel)
    assert len(uploads(emulator)) == 1
    clock.advance(timedelta(minutes=5))
    await run(bot, "status resolved for real now", user=people.alice, channel=channel)
    first_again, second = uploads(emulator, channel)
    assert first_again is first
    assert "Impact: checkout slow" in content(second).decode()
    assert len(emulator.calls_to("files.completeUploadExternal")) == 2
    assert_all_calls_valid(emulator.calls)


async def test_a_failed_upload_is_retried_and_still_posted_once(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await declare(bot, people.alice)
    clock.advance(timedelta(minutes=30))
    # Slack refuses to complete the upload twice (5xx beyond the client's own retries).
    emulator.fail_next("files.completeUploadExternal", status=500, times=4)
    await run(bot, "resolve", user=people.alice, channel=channel)
    assert uploads(emulator) == []
    for _ in range(10):
        clock.advance(timedelta(minutes=1))
        await bot.settle()
        if uploads(emulator):
            break
    [upload] = uploads(emulator, channel)
    assert upload.name == "INC-1-postmortem.md"
    shared = [m for m in emulator.channel(channel).messages if m.files]
    assert len(shared) == 1
    assert_all_calls_valid([c for c in emulator.calls if c.ok])


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("INC-99", "There is no incident INC-99."),
        ("INC-x", "`INC-x` is not an incident: write `INC-` and its number, e.g. `INC-7`."),
        ("7", "`7` is not an incident: write `INC-` and its number, e.g. `INC-7`."),
        ("INC-0", "`INC-0` is not an incident: write `INC-` and its number, e.g. `INC-7`."),
    ],
    ids=["unknown", "malformed", "bare-number", "zero"],
)
async def test_cli_refuses_what_is_not_an_incident_in_one_line(
    delivery: Delivery,
    emulator: SlackEmulator,
    people: People,
    tmp_path: Path,
    ref: str,
    expected: str,
) -> None:
    await declare(delivery.bot, people.alice)
    out = tmp_path / "draft.md"
    for extra in ((), ("-o", str(out))):
        code, stdout, stderr = await cli(
            "postmortem",
            ref,
            *extra,
            env=cli_env(tmp_path, delivery.database_url),
            cwd=tmp_path,
        )
        assert code == 1, stderr
        assert stdout == b""
        lines = stderr.strip().splitlines()
        assert len(lines) == 1, stderr
        assert lines[0] in (expected, f"error: {expected}")
        assert "Traceback" not in stderr
        assert not out.exists()


async def test_cli_cannot_write_the_file_says_so_in_one_line(
    delivery: Delivery, people: People, tmp_path: Path
) -> None:
    await declare(delivery.bot, people.alice)
    (tmp_path / "a-directory").mkdir()
    for target in (tmp_path / "missing" / "draft.md", tmp_path / "a-directory"):
        code, stdout, stderr = await cli(
            "postmortem",
            "INC-1",
            "-o",
            str(target),
            env=cli_env(tmp_path, delivery.database_url),
            cwd=tmp_path,
        )
        assert code == 1, stderr
        assert stdout == b""
        [line] = stderr.strip().splitlines()
        assert line.startswith(f"error: cannot write {target}: "), line
        assert "Traceback" not in stderr


async def test_cli_prints_utf8_whatever_the_terminal_encoding(
    delivery: Delivery, people: People, tmp_path: Path
) -> None:
    """`python -m bot postmortem INC-1 > draft.md` gives the file `-o draft.md` gives."""
    await declare(delivery.bot, people.alice)
    env = cli_env(tmp_path, delivery.database_url)
    out = tmp_path / "draft.md"
    code, _, stderr = await cli("postmortem", "INC-1", "-o", str(out), env=env, cwd=tmp_path)
    assert code == 0, stderr
    for encoding in ("ascii", "latin-1"):
        code, stdout, stderr = await cli(
            "postmortem", "INC-1", env={**env, "PYTHONIOENCODING": encoding}, cwd=tmp_path
        )
        assert code == 0, stderr
        assert "Traceback" not in stderr
        text = stdout.decode("utf-8")
        assert text.startswith("# Postmortem: INC-1 — Checkout latency spike\n")
        # Only the "so far" of an ongoing incident moves with the real clock.
        assert text.split("### Duration:")[0] == out.read_text().split("### Duration:")[0]


async def test_cli_on_a_database_without_migrations_says_so(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/empty.db"
    code, stdout, stderr = await cli(
        "postmortem", "INC-1", env=cli_env(tmp_path, database_url), cwd=tmp_path
    )
    assert code == 1, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "python -m bot db upgrade" in stderr and "Traceback" not in stderr


# -- the HTTP endpoint --------------------------------------------------------------------


async def _public_and_private(bot: BotHarness, people: People) -> None:
    """INC-1 public, INC-2 private; INC-99 does not exist."""
    await declare(bot, people.alice)
    await usecases.declare(
        bot.services,
        actor=people.alice,
        declaration=usecases.Declaration(title="Payroll data exposed", private=True),
    )
    await bot.settle()
    assert (await incident(bot, 2)).private


PATHS = ("/incidents/1/postmortem.md", "/incidents/2/postmortem.md", "/incidents/99/postmortem.md")


@pytest.mark.parametrize(
    "configured",
    [{}, {"POSTMORTEM_TOKEN": ""}, {"POSTMORTEM_TOKEN": "   "}],
    ids=["unset", "empty", "blank"],
)
async def test_without_a_configured_token_nothing_is_served(
    sqlite_url: str,
    emulator: SlackEmulator,
    clock: FakeClock,
    people: People,
    configured: dict[str, str],
) -> None:
    async with running(sqlite_url, emulator, clock, **configured) as started:
        bot = started.bot
        await _public_and_private(bot, people)
        for path in PATHS:
            for token in (None, "", "   ", "anything", TOKEN):
                for query in (False, True):
                    status, kind, _, body = await fetch(bot, path, token=token, query=query)
                    assert (status, kind) == (401, "application/json"), (path, token, query)
                    assert body == b'{"error": "a valid POSTMORTEM_TOKEN is required"}'


async def test_a_wrong_token_learns_nothing(bot: BotHarness, people: People) -> None:
    await _public_and_private(bot, people)
    answers = set()
    for path in PATHS:
        for token in (None, "", "wrong", TOKEN + "x", TOKEN[:-1], TOKEN.upper()):
            for query in (False, True):
                status, kind, _, body = await fetch(bot, path, token=token, query=query)
                assert (status, kind) == (401, "application/json"), (path, token, query)
                answers.add(body)
        # Another scheme, or the token without "Bearer ", is no token.
        for header in (f"Basic {TOKEN}", f"Token {TOKEN}", f"Bearer  {TOKEN}"):
            async with bot.http.get(bot.url + path, headers={"Authorization": header}) as r:
                assert r.status == 401, header
                answers.add(await r.read())
    assert answers == {b'{"error": "a valid POSTMORTEM_TOKEN is required"}'}


async def test_the_right_token_gets_the_draft_and_an_unknown_incident_404(
    bot: BotHarness, people: People
) -> None:
    await _public_and_private(bot, people)
    for number, title in ((1, "Checkout latency spike"), (2, "Payroll data exposed")):
        status, kind, charset, body = await fetch(
            bot, f"/incidents/{number}/postmortem.md", token=TOKEN
        )
        assert (status, kind, charset.lower()) == (200, "text/markdown", "utf-8")
        assert body.decode().startswith(f"# Postmortem: INC-{number} — {title}\n")
        assert DRAFT_LINE in body.decode()
    status, kind, _, body = await fetch(bot, "/incidents/99/postmortem.md", token=TOKEN)
    assert (status, kind) == (404, "application/json")
    assert b"INC-99" in body


@pytest.mark.parametrize(
    "path",
    [
        "/incidents/1%2F..%2F/postmortem.md",
        "/incidents/1%2f..%2f..%2fetc%2fpasswd/postmortem.md",
        "/incidents/..%2F1/postmortem.md",
        "/incidents/1/../1/postmortem.md",
        "/incidents/%2E%2E/postmortem.md",
        "/incidents/1/postmortem.md%00",
        "/incidents/1/postmortem.md/",
        "/incidents/-1/postmortem.md",
        "/incidents/0/postmortem.md",
        "/incidents/01x/postmortem.md",
        "/incidents/1e3/postmortem.md",
        "/incidents/9999999999/postmortem.md",
        "/incidents//postmortem.md",
        "/incidents/1/postmortem.txt",
        "/incidents/INC-1/postmortem.md",
    ],
)
async def test_odd_paths_are_404(bot: BotHarness, people: People, path: str) -> None:
    await _public_and_private(bot, people)
    status, _, _, body = await fetch(bot, path, token=TOKEN)
    assert status == 404, (path, body[:200])
    assert b"# Postmortem" not in body


# -- a huge timeline ----------------------------------------------------------------------

HUGE = 50_000


# aiohttp warns about any request body over 1 MB given as bytes (slack_sdk uploads bytes);
# Python ignores ResourceWarning by default, only this suite turns warnings into errors.
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
async def test_fifty_thousand_timeline_entries_still_give_a_file_and_short_messages(
    bot: BotHarness, emulator: SlackEmulator, clock: FakeClock, people: People
) -> None:
    channel = await declare(bot, people.alice)
    declared = await incident(bot, 1)
    begin = declared.declared_at - timedelta(days=2)
    rows = [
        {
            "incident_id": declared.id,
            "occurred_at": begin + timedelta(seconds=3 * i),
            "recorded_at": declared.declared_at,
            "kind": EntryKind.NOTE.value,
            "text": f"entry {i:05d}: replica lag {i % 97} s on db-{i % 7}",
            "author": people.bob if i % 2 else people.alice,
            "source": EntrySource.PERSON,
        }
        for i in range(HUGE)
    ]
    async with bot.services.sessions() as session, session.begin():
        await session.execute(sa.insert(TimelineEntry), rows)
    clock.advance(timedelta(minutes=10))

    said = await run(bot, "postmortem", user=people.alice, channel=channel)
    assert said == f"The postmortem draft of INC-1 is on its way to <#{channel}>."
    [upload] = uploads(emulator, channel)
    data = content(upload)
    assert len(data) > 1_000_000
    markdown = data.decode("utf-8")
    timeline = markdown.split("### Timeline:\n\n", 1)[1].split("\n\n```mermaid", 1)[0]
    lines = timeline.splitlines()
    assert len(lines) == HUGE + 1  # every entry, and the declaration
    assert all(line.startswith("* ") for line in lines)
    assert sum(1 for line in lines if ": entry " in line) == HUGE
    assert "entry 00000" in lines[0] and "entry 49999" in lines[HUGE - 1]
    assert "Incident declared" in lines[-1]
    assert "… 49952 more (see the list above)" in markdown  # the diagram stays small
    assert markdown.rstrip().endswith("_No tasks recorded yet — /incident task …_")

    # Slack got the file; no message carries the timeline.
    longest = max(
        len(str(c.args.get("text", ""))) + len(str(c.args.get("blocks", "")))
        for c in emulator.calls_to("chat.postMessage")
    )
    assert longest < 4000
    comment = str(emulator.calls_to("files.completeUploadExternal")[-1].args["initial_comment"])
    assert len(comment) < 500
    assert_all_calls_valid(emulator.calls)  # speed is measured by bench/, never asserted here
