"""`python -m bot demo`: a whole incident through the real app, against the built-in Slack.

The scenario is the outage of the reference postmortem: a product launch sends traffic up,
cache misses overload the database, checkout slows down from 10:15 to 11:45 AM PST. Every
step is a request signed exactly as Slack signs it, sent to the real server on a real port;
the bot answers through the emulated Web API. The clock is the demo's own, so notes and
pinned messages carry the scenario's times while the demo runs in seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web

from bot.config import Settings
from bot.core.clock import FakeClock, format_time
from bot.core.playbooks import load_playbook
from bot.db.migrate import upgrade
from bot.emulator import SlackEmulator
from bot.services import Services, build_services
from bot.wiring import build_web

ZONE = ZoneInfo("America/Los_Angeles")
DAY = "2026-11-25"


@dataclass(frozen=True)
class Step:
    """Something a person does at a given local time."""

    at: str  # HH:MM in ZONE on DAY
    who: str
    kind: str  # command | message | pin
    text: str = ""


IMPACT = (
    "A significant degradation in website performance was experienced by approximately 70% of "
    "users. Users reported slow page load times, intermittent errors, and inability to complete "
    "transactions. The primary service affected was the e-commerce platform."
)
CAUSE = (
    "A surge in traffic combined with inefficient caching mechanisms led to database overload "
    "and subsequent application slowdowns."
)
CAUSE_DETAIL = (
    "The root cause of the issue was a combination of unexpectedly high traffic and inefficient "
    "caching. A popular product launch generated a significant surge in website visitors, "
    "overwhelming the database. The existing caching mechanism was not designed to handle such "
    "a sudden increase in load, resulting in frequent cache misses and increased database "
    "queries."
)
RESOLUTION = (
    "To resolve the issue, we implemented temporary caching measures. This involved increasing "
    "cache expiration times for frequently accessed data and introducing additional cache layers "
    "to distribute the load. These changes effectively reduced the burden on the database and "
    "improved overall system performance."
)
MEASURES = [
    "Enhance caching infrastructure: Expand cache capacity and implement more sophisticated "
    "caching strategies to handle traffic spikes.",
    "Implement load testing: Regularly conduct load tests to identify performance bottlenecks "
    "and evaluate system capacity.",
    "Improve monitoring: Enhance monitoring capabilities to detect performance issues earlier.",
    "Incident response plan: Develop a more detailed incident response plan outlining roles, "
    "responsibilities, and escalation procedures.",
    "Capacity planning: Conduct thorough capacity planning to anticipate future growth and "
    "resource requirements.",
]
TASKS = [
    "Increase cache server memory by 50%. @bob due 2026-12-02",
    "Implement a distributed cache solution. @bob due 2026-12-16",
    "Conduct load tests every two weeks. @dana",
    "Add monitoring for database query latency. @dana due 2026-12-04",
    "Create an incident response playbook. @alice",
    "Update capacity planning models. @alice due 2026-12-09",
]

# The team's playbook: the people behind each role are found, invited, given their role and
# paged by Slack DM the moment an incident is declared; the commander escalates if nobody acks.
PLAYBOOK = """
name: checkout
match: {default: true}
roles:
  commander: {slack: ["@alice"], required: true}
  ops: {slack: ["@bob"]}
  comms: {slack: ["carol@example.com"]}
  dba: {slack: ["@erin"]}
escalation:
  - {after: 15m, page: [dba]}
reminders: {status_update_every: {sev1: 15m, sev2: 30m, sev3: 2h}}
checklist: ["Post a status update for customers", "Check the cache hit rate dashboard"]
bookmarks: [{title: Checkout dashboard, link: "https://grafana.example.com/d/checkout"}]
postmortem: {due_in: 5d}
"""

SCENARIO: list[Step] = [
    Step("10:18", "dana", "command", "declare sev2 Checkout slow and failing after product launch"),
    Step("10:18", "dana", "command", "started 10:15"),
    Step(
        "10:19",
        "dana",
        "command",
        "note at 10:15 Increased error rates and slow response times detected by monitoring "
        "system.",
    ),
    Step("10:20", "alice", "ack"),
    Step(
        "10:26",
        "alice",
        "command",
        "note at 10:25 Initial investigation focused on application code and database queries.",
    ),
    Step(
        "10:40",
        "bob",
        "message",
        "Database load spikes identified as the primary bottleneck. Caching infrastructure was "
        "examined.",
    ),
    Step("10:41", "alice", "pin"),
    Step("10:41", "alice", "command", "status identified at 10:40 cache misses overload the DB"),
    Step(
        "10:45",
        "carol",
        "command",
        "update Checkout is slow for most customers; we found database overload and are "
        "mitigating. Next update by 11:15.",
    ),
    Step(
        "10:56",
        "alice",
        "command",
        "note at 10:55 Decision made to implement temporary caching measures.",
    ),
    Step(
        "11:16",
        "bob",
        "command",
        "note at 11:15 Caching changes deployed. System stability begins to recover.",
    ),
    Step("11:16", "alice", "command", "status monitoring at 11:15"),
    Step("11:46", "alice", "command", "note at 11:45 System performance returns to normal levels."),
    Step("11:47", "alice", "command", "resolve at 11:45"),
    Step("11:50", "alice", "command", f"impact {IMPACT}"),
    # A blank line (shift+enter in Slack) separates the summary from the detailed account.
    Step("11:51", "bob", "command", f"cause {CAUSE}\n\n{CAUSE_DETAIL}"),
    Step("11:52", "bob", "command", f"resolution {RESOLUTION}"),
    *(Step("11:55", "alice", "command", f"measure {m}") for m in MEASURES),
    *(Step("11:58", "alice", "command", f"task {t}") for t in TASKS),
    Step("12:00", "alice", "command", "timeline"),
    Step("12:01", "alice", "command", "postmortem"),
]


def local(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hhmm}").replace(tzinfo=ZONE)


class Transcript:
    """What each person typed and what the bot did, readable."""

    def __init__(self, out: TextIO, names: dict[str, str]) -> None:
        self.out = out
        self.names = names
        self.channels: dict[str, str] = {}  # id -> "#name", filled as channels appear

    def say(self, line: str) -> None:
        self.out.write(line + "\n")

    def person(self, when: datetime, who: str, what: str) -> None:
        self.say(f"\n{format_time(when, ZONE)}  {who}: {what}")

    def bot(self, what: str) -> None:
        self.say(f"{'':>13}bot  {self._names(what)}")

    def _names(self, text: str) -> str:
        for user_id, name in self.names.items():
            text = text.replace(f"<@{user_id}>", f"@{name}").replace(user_id, f"@{name}")
        for channel_id, name in self.channels.items():
            text = text.replace(f"<#{channel_id}>", name)
        return " ".join(text.split())


async def run_demo(out_dir: Path, *, stream: TextIO = sys.stdout) -> Path:
    """Play the scenario; return the path of the postmortem written."""
    clock = FakeClock(local("10:18").astimezone(ZoneInfo("UTC")))
    emulator = SlackEmulator(bot_token="xoxb-demo-token", clock=lambda: clock.now().timestamp())
    await emulator.start()
    people = {
        name: emulator.add_user(name, real_name=name.title(), email=f"{name}@example.com")
        for name in ("dana", "alice", "bob", "carol", "erin")
    }
    announcements = emulator.add_channel("incidents", members=list(people.values()))
    secret = secrets.token_hex(16)
    transcript = Transcript(stream, {v: k for k, v in people.items()})
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite+aiosqlite:///{Path(tmp) / 'demo.db'}"
        await upgrade(database)
        settings = Settings(
            _env_file=None,
            SLACK_BOT_TOKEN=emulator.bot_token,
            SLACK_SIGNING_SECRET=secret,
            SLACK_API_URL=emulator.url,
            DATABASE_URL=database,
            INCIDENT_TIMEZONE=ZONE.key,
            INCIDENTS_CHANNEL=announcements,
        )
        services = build_services(
            settings, clock=clock, playbooks=[load_playbook(PLAYBOOK, filename="checkout.yaml")]
        )
        app, _ = build_web(services)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        services.effects.start()
        try:
            async with aiohttp.ClientSession() as http:
                player = Player(
                    http=http,
                    url=f"http://127.0.0.1:{port}/slack/events",
                    secret=secret,
                    emulator=emulator,
                    services=services,
                    clock=clock,
                    people=people,
                    transcript=transcript,
                )
                transcript.say(f"Incident demo — {DAY}, times in {ZONE.key}")
                for step in SCENARIO:
                    await player.play(step)
            document = await _uploaded_postmortem(emulator)
        finally:
            await runner.cleanup()
            await services.aclose()
            await emulator.stop()
    path = out_dir / "INC-1-postmortem.md"
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240  (once, at the very end)
    path.write_text(document, encoding="utf-8")
    transcript.say(f"\nPostmortem draft written to {path}")
    return path


async def _uploaded_postmortem(emulator: SlackEmulator) -> str:
    files = [f for f in emulator.state.files.values() if f.name.endswith("-postmortem.md")]
    if not files:
        raise RuntimeError("the bot did not upload a postmortem")
    content = files[-1].content
    return content.decode("utf-8") if isinstance(content, bytes) else str(content)


@dataclass
class Player:
    """Sends each step as Slack would and narrates what the bot did."""

    http: aiohttp.ClientSession
    url: str
    secret: str
    emulator: SlackEmulator
    services: Services
    clock: FakeClock
    people: dict[str, str]
    transcript: Transcript
    last_message: tuple[str, str, str] | None = None  # channel, ts, author
    event_number: int = 0

    @property
    def channel(self) -> str:
        created = self.emulator.calls_to("conversations.create")
        return str(created[0].response["channel"]["id"]) if created else "CGENERAL"

    async def play(self, step: Step) -> None:
        when = local(step.at)
        if when.astimezone(ZoneInfo("UTC")) > self.clock.now():
            self.clock.set(when.astimezone(ZoneInfo("UTC")))
        seen_calls, seen_responses = len(self.emulator.calls), len(self.emulator.responses)
        user = self.people[step.who]
        if step.kind == "command":
            self.transcript.person(when, step.who, f"/incident {_short(step.text)}")
            text = _mentions(step.text, self.people)
            await self._post(
                urlencode(
                    {
                        "command": "/incident",
                        "text": text,
                        "user_id": user,
                        "user_name": step.who,
                        "channel_id": self.channel,
                        "team_id": "T0001",
                        "response_url": self.emulator.response_url(),
                        "trigger_id": f"{time.time():.0f}.demo",
                    }
                ),
                "application/x-www-form-urlencoded",
            )
        elif step.kind == "message":
            self.transcript.person(when, step.who, step.text)
            ts = self.emulator.post_as_user(self.channel, user, step.text)
            self.last_message = (self.channel, ts, user)
        elif step.kind == "ack":
            page_id = self._page_for(user)
            self.transcript.person(when, step.who, "presses Acknowledge on the page")
            await self._post(
                urlencode(
                    {
                        "payload": json.dumps(
                            {
                                "type": "block_actions",
                                "user": {"id": user, "username": step.who, "team_id": "T0001"},
                                "team": {"id": "T0001", "domain": "emulated"},
                                "api_app_id": "A0DEMO",
                                "trigger_id": f"{time.time():.0f}.demo",
                                "response_url": self.emulator.response_url(),
                                "container": {"type": "message"},
                                "actions": [
                                    {
                                        "type": "button",
                                        "action_id": "page-acknowledge",
                                        "block_id": "page-actions:INC-1",
                                        "value": str(page_id),
                                        "action_ts": f"{time.time():.6f}",
                                    }
                                ],
                            }
                        )
                    }
                ),
                "application/x-www-form-urlencoded",
            )
        elif step.kind == "pin":
            assert self.last_message is not None
            channel, ts, author = self.last_message
            self.transcript.person(when, step.who, "reacts with :pushpin: to that message")
            self.event_number += 1
            await self._post(
                json.dumps(
                    {
                        "type": "event_callback",
                        "team_id": "T0001",
                        "api_app_id": "A0DEMO",
                        "event_id": f"Ev{self.event_number:08d}",
                        "event_time": int(self.clock.now().timestamp()),
                        "event": {
                            "type": "reaction_added",
                            "user": user,
                            "reaction": "pushpin",
                            "item_user": author,
                            "item": {"type": "message", "channel": channel, "ts": ts},
                            "event_ts": f"{self.clock.now().timestamp():.6f}",
                        },
                    }
                ),
                "application/json",
            )
        await self.services.settle()
        self._narrate(seen_calls, seen_responses)

    def _page_for(self, user: str) -> int:
        """The page id on the Acknowledge button of the DM the bot sent this person."""
        for call in reversed(self.emulator.calls_to("chat.postMessage")):
            if call.args.get("channel") != user:
                continue
            blocks_sent = call.args.get("blocks")
            found = json.loads(blocks_sent) if isinstance(blocks_sent, str) else blocks_sent or []
            for block in found:
                for element in block.get("elements", []):
                    if element.get("action_id") == "page-acknowledge":
                        return int(element["value"])
        raise RuntimeError(f"no page was sent to {user}")

    async def _post(self, body: str, content_type: str) -> None:
        timestamp = str(int(time.time()))
        digest = hmac.new(
            self.secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
        }
        async with self.http.post(self.url, data=body.encode(), headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"the bot answered {response.status}: {await response.text()}")

    def _narrate(self, seen_calls: int, seen_responses: int) -> None:
        names = {c.id: f"#{c.name}" for c in self.emulator.state.channels.values()}
        self.transcript.channels = names
        for call in self.emulator.calls[seen_calls:]:
            line = _describe_call(call.method, call.args, names)
            if line:
                self.transcript.bot(line)
        for response in self.emulator.responses[seen_responses:]:
            text = str(response.args.get("text", ""))
            self.transcript.bot(f"(only you) {_short(text, 160)}")


def _describe_call(method: str, args: dict[str, Any], names: dict[str, str]) -> str | None:
    channel = names.get(str(args.get("channel", args.get("channel_id", ""))), args.get("channel"))
    describe: dict[str, Callable[[], str]] = {
        "conversations.create": lambda: f"creates #{args.get('name')}",
        "conversations.invite": lambda: f"invites {args.get('users')} to {channel}",
        "conversations.setTopic": lambda: f"sets the topic of {channel}: {args.get('topic')}",
        "chat.postMessage": lambda: (
            f"{'DMs' if str(channel).startswith('U') else 'posts in'} {channel}: "
            f"{_short(str(args.get('text', '')), 140)}"
        ),
        "chat.update": lambda: f"updates the summary card in {channel}",
        "pins.add": lambda: f"pins the summary card in {channel}",
        "files.completeUploadExternal": lambda: f"uploads the postmortem draft to {channel}",
    }
    return describe[method]() if method in describe else None


def _mentions(text: str, people: dict[str, str]) -> str:
    # Slack escapes @name into <@U…|name> before the command reaches the app.
    for name, user_id in people.items():
        text = text.replace(f"@{name}", f"<@{user_id}|{name}>")
    return text


def _short(text: str, limit: int = 110) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
