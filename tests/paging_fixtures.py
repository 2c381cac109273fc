"""A workspace for the paging tests: people, a user group, fake pagers and the bot.

`paging_world` starts the Slack emulator's people (alice, bob, carol by email, dan and erin in
the `dba-oncall` user group, dana who declares), FakePagerDuty and FakeOpsgenie on real ports,
and hands the test a `start(...)` that runs the bot with the playbooks it is given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlmodel import col, select

from bot import paging
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, Severity
from bot.core.playbooks import Playbook, load_playbook
from bot.db.models import Incident, Page, RoleAssignment, TimelineEntry
from bot.emulator import SlackEmulator
from bot.emulator.server import RecordedCall
from bot.slack.ids import ActionId, BlockId
from bot.usecases import Declaration
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.pagers.fakes import FakeOpsgenie, FakePagerDuty, Received

PD_DB_KEY = "PDDBKEY0123456789abcdef012345678"  # 32 characters, as PagerDuty issues them
PD_PAY_KEY = "PDPAYKEY123456789abcdef012345678"
GENIE_KEY = "og-paging-tests-key"
PD_WEBHOOK_SECRET = "pd-webhook-secret-for-tests"

DATABASE_PLAYBOOK = """
name: database
match: {services: [postgres, checkout-db], min_severity: sev2}
roles:
  commander: {slack: ["@alice", "GROUP"], required: true}
  ops:       {pagerduty: {routing_key_env: PD_DB_KEY}, ack_timeout: ACK}
  comms:     {slack: ["carol@example.com"]}
  scribe:    {slack: ["@ghost", "ghost@example.com"]}
escalation:
  - {after: 5m, page: [ops]}
  - {after: 10m, page: [commander], opsgenie: {responders: [{type: team, name: dba}]}}
reminders: {status_update_every: {sev1: 15m, sev2: 30m, sev3: 2h}}
checklist: ["Post a status update", "Check the cache hit rate dashboard"]
bookmarks: [{title: DB dashboard, link: "https://grafana.example.com/d/db"}]
postmortem: {due_in: 5d}
"""

PAYMENTS_PLAYBOOK = """
name: payments
match: {services: [payments]}
roles:
  commander: {slack: ["@alice"]}
  ops:       {pagerduty: {routing_key_env: PD_PAY_KEY}}
bookmarks: [{title: Payments dashboard, link: "https://grafana.example.com/d/pay"}]
"""

PRIVATE_PLAYBOOK = """
name: security
match: {services: [auth]}
private: true
roles:
  commander: {slack: ["@alice"], required: true}
  ops:       {pagerduty: {routing_key_env: PD_DB_KEY}}
"""

DB_TITLE = "Primary database refuses connections"


@dataclass
class OrderedPagerDuty(FakePagerDuty):
    """FakePagerDuty that notes how many Slack calls the emulator had seen at each request."""

    emulator: SlackEmulator | None = None
    slack_calls_before: list[int] = field(default_factory=list)

    async def _record(self, request: web.Request) -> Received:
        if self.emulator is not None:
            self.slack_calls_before.append(len(self.emulator.calls))
        return await super()._record(request)


@dataclass
class PagingWorld:
    """The bot and everything it talks to, with helpers to read what happened."""

    emu: SlackEmulator
    clock: FakeClock
    pd: OrderedPagerDuty
    og: FakeOpsgenie
    people: dict[str, str]
    group: str
    sqlite_url: str
    bot: BotHarness | None = None
    runner: web.AppRunner | None = None
    announcements: str | None = None
    started_at: datetime | None = None

    # -- starting --------------------------------------------------------------------------

    def database_playbook(self, *, ack_timeout: str = "5m") -> Playbook:
        text = DATABASE_PLAYBOOK.replace("GROUP", self.group).replace("ACK", ack_timeout)
        return load_playbook(text, filename="database.yaml")

    async def start(
        self,
        *,
        playbooks: Sequence[Playbook] | None = None,
        environ: Mapping[str, str] | None = None,
        announce: bool = False,
        webhook_secret: str | None = PD_WEBHOOK_SECRET,
        extra_settings: Mapping[str, Any] | None = None,
    ) -> BotHarness:
        if playbooks is None:
            playbooks = [
                self.database_playbook(),
                load_playbook(PAYMENTS_PLAYBOOK, filename="payments.yaml"),
            ]
        if environ is None:
            environ = {"PD_DB_KEY": PD_DB_KEY, "PD_PAY_KEY": PD_PAY_KEY}
        environ = {"OPSGENIE_API_KEY": GENIE_KEY, **environ}
        extra: dict[str, Any] = {
            "PAGERDUTY_EVENTS_URL": self.pd.events_url,
            "OPSGENIE_API_URL": self.og.base_url,
        }
        if webhook_secret is not None:
            extra["PAGERDUTY_WEBHOOK_SECRET"] = webhook_secret
        extra.update(extra_settings or {})
        if announce:
            self.announcements = self.emu.add_channel("incidents", members=[self.emu.bot_user_id])
            extra["INCIDENTS_CHANNEL"] = self.announcements
        settings = make_settings(database_url=self.sqlite_url, api_url=self.emu.url, **extra)
        self.bot, self.runner = await start_bot(
            settings=settings,
            emulator=self.emu,
            clock=self.clock,
            playbooks=playbooks,
            environ=environ,
        )
        self.started_at = self.clock.now()
        return self.bot

    async def stop(self) -> None:
        if self.bot is not None and self.runner is not None:
            await stop_bot(self.bot, self.runner)
            self.bot = self.runner = None

    @property
    def harness(self) -> BotHarness:
        assert self.bot is not None, "start() the bot first"
        return self.bot

    # -- acting ----------------------------------------------------------------------------

    async def declare(
        self,
        *,
        service: str | None = "postgres",
        severity: Severity = Severity.SEV2,
        title: str = DB_TITLE,
        actor: str = "dana",
    ) -> Incident:
        """Declare as `paging.declare_incident` does for the modal, then let everything run."""
        await paging.declare_incident(
            self.harness.services,
            actor=self.people[actor],
            declaration=Declaration(title=title, severity=severity, service=service),
        )
        await self.settle()
        return await self.incident()

    async def settle(self) -> None:
        await self.harness.settle()

    def at(self, *, minutes: float) -> datetime:
        assert self.started_at is not None
        return self.started_at + timedelta(minutes=minutes)

    async def advance_to(self, *, minutes: float) -> None:
        self.clock.set(self.at(minutes=minutes))
        await self.settle()

    async def press(self, action: ActionId, page_id: int, *, user: str) -> None:
        """Press a button on a page DM, as Slack sends it, and wait for the work after the ack."""
        reply = await self.harness.interact(page_button(self, action, page_id, user=user))
        assert reply.status == 200, reply.text
        await self.settle()

    async def command(self, text: str, *, user: str, channel: str | None = None) -> None:
        reply = await self.harness.command(
            text, user=self.people[user], channel=channel or await self.channel()
        )
        assert reply.status == 200, reply.text
        await self.settle()

    async def pagerduty_webhook(
        self,
        payload: Any,
        *,
        secret: str | None = PD_WEBHOOK_SECRET,
        signature: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature is None and secret is not None:
            signature = pd_signature(secret, body)
        if signature is not None:
            headers["X-PagerDuty-Signature"] = signature
        async with self.harness.http.post(
            self.harness.url + "/webhooks/pagerduty", data=body, headers=headers
        ) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    # -- reading ---------------------------------------------------------------------------

    async def incident(self, number: int = 1) -> Incident:
        async with self.harness.services.sessions() as session:
            found = (
                (await session.execute(select(Incident).where(Incident.number == number)))
                .scalars()
                .one()
            )
        return found

    async def channel(self, number: int = 1) -> str:
        incident = await self.incident(number)
        assert incident.channel_id is not None
        return incident.channel_id

    async def timeline(self, kind: EntryKind | None = None) -> list[TimelineEntry]:
        incident = await self.incident()
        async with self.harness.services.sessions() as session:
            query = (
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident.id)
                .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
            )
            entries = list((await session.execute(query)).scalars().all())
        return [e for e in entries if kind is None or e.kind == kind]

    async def texts(self, kind: EntryKind) -> list[str]:
        return [entry.text for entry in await self.timeline(kind)]

    async def pages(self) -> list[Page]:
        incident = await self.incident()
        async with self.harness.services.sessions() as session:
            query = select(Page).where(Page.incident_id == incident.id).order_by(col(Page.id))
            return list((await session.execute(query)).scalars().all())

    async def roles(self) -> dict[str, list[str]]:
        incident = await self.incident()
        async with self.harness.services.sessions() as session:
            query = (
                select(RoleAssignment)
                .where(
                    RoleAssignment.incident_id == incident.id,
                    col(RoleAssignment.ended_at).is_(None),
                )
                .order_by(col(RoleAssignment.id))
            )
            rows = (await session.execute(query)).scalars().all()
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(row.role, []).append(row.user_id)
        return out

    def dms_to(self, name: str) -> list[RecordedCall]:
        """chat.postMessage calls that page `name` by DM (the ones with page buttons)."""
        user = self.people[name]
        return [
            call
            for call in self.emu.calls_to("chat.postMessage")
            if call.args.get("channel") == user and page_ids_in(call)
        ]

    def channel_texts(self, channel: str) -> list[str]:
        return [
            str(call.args.get("text", ""))
            for call in self.emu.calls_to("chat.postMessage")
            if call.args.get("channel") == channel and call.ok
        ]

    def pd_events(self, action: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.pd.events if action is None or e["event_action"] == action]

    def og_alerts(self) -> list[dict[str, Any]]:
        return [r.body for r in self.og.received if r.path == "/v2/alerts" and r.status == 202]

    def responses_text(self) -> list[str]:
        return [str(r.args.get("text", "")) for r in self.emu.responses]


def decoded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def page_ids_in(call: RecordedCall) -> list[int]:
    """The page ids the Acknowledge buttons of a DM carry."""
    out = []
    for block in decoded(call.args.get("blocks")) or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == ActionId.ACKNOWLEDGE_PAGE.value:
                out.append(int(element["value"]))
    return out


def pd_signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def pd_acknowledged(
    title: str, *, agent: str = "Olive Ops", event_type: str = "incident.acknowledged"
) -> dict[str, Any]:
    """A PagerDuty V3 webhook delivery, shaped like PagerDuty's documentation example.

    Its incident_key is the dedup key the bot would have triggered for the INC-n in the
    title (the ops role), or another system's key when the title names none of ours.
    """
    ours = re.search(r"\bINC-\d+", title)
    incident_key = f"incident-bot/{ours.group()}/ops" if ours else "nagios/db-7/disk"
    return {
        "event": {
            "id": "01DEN1HNLBC1VITP5ILSJ2KZFR",
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-11-25T18:37:00.000Z",
            "agent": {
                "html_url": "https://acme.pagerduty.com/users/PLH1HKV",
                "id": "PLH1HKV",
                "self": "https://api.pagerduty.com/users/PLH1HKV",
                "summary": agent,
                "type": "user_reference",
            },
            "client": None,
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "self": "https://api.pagerduty.com/incidents/PGR0VU2",
                "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
                "number": 2,
                "status": "acknowledged",
                "incident_key": incident_key,
                "created_at": "2026-11-25T18:35:00Z",
                "title": title,
                "service": {
                    "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
                    "id": "PF9KMXH",
                    "self": "https://api.pagerduty.com/services/PF9KMXH",
                    "summary": "Database",
                    "type": "service_reference",
                },
                "assignees": [],
                "escalation_policy": {
                    "id": "PUS0KTE",
                    "summary": "Default",
                    "type": "escalation_policy_reference",
                },
                "teams": [],
                "priority": None,
                "urgency": "high",
                "conference_bridge": None,
                "resolve_reason": None,
            },
        }
    }


def page_button(world: PagingWorld, action: ActionId, page_id: int, *, user: str) -> dict[str, Any]:
    """The block_actions payload Slack sends when a page DM's button is pressed."""
    user_id = world.people[user]
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user, "name": user, "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": "D0DM" + user_id[-4:],
            "is_ephemeral": False,
        },
        "trigger_id": "111.222.valid",
        "team": {"id": "T0001", "domain": "example"},
        "channel": {"id": "D0DM" + user_id[-4:], "name": "directmessage"},
        "response_url": world.emu.response_url(user=user_id),
        "actions": [
            {
                "action_id": action.value,
                "block_id": "page:INC-1",
                "type": "button",
                "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
                "value": str(page_id),
                "action_ts": "1700000000.000200",
            }
        ],
    }


def declare_form(*, title: str, severity: str, service: str) -> dict[str, Any]:
    """`view.state.values` of the declare modal."""
    return {
        BlockId.TITLE: {BlockId.TITLE: {"type": "plain_text_input", "value": title}},
        BlockId.SEVERITY: {
            BlockId.SEVERITY: {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": severity.upper()},
                    "value": severity,
                },
            }
        },
        BlockId.SERVICE: {BlockId.SERVICE: {"type": "plain_text_input", "value": service}},
        BlockId.IMPACT: {BlockId.IMPACT: {"type": "plain_text_input", "value": None}},
        BlockId.PRIVATE: {BlockId.PRIVATE: {"type": "checkboxes", "selected_options": []}},
    }


@asynccontextmanager
async def paging_world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[PagingWorld]:
    """The people, the fake pagers, and a world to start the bot in; all stopped after."""
    people = {
        "alice": emulator.add_user("alice", email="alice@example.com"),
        "bob": emulator.add_user("bob", email="bob@example.com"),
        "carol": emulator.add_user("carol", email="carol@example.com"),
        "dan": emulator.add_user("dan", email="dan@example.com"),
        "erin": emulator.add_user("erin", email="erin@example.com"),
        "dana": emulator.add_user("dana", email="dana@example.com"),
    }
    group = emulator.add_usergroup("dba-oncall", [people["dan"], people["erin"]])
    pd = OrderedPagerDuty(emulator=emulator)
    og = FakeOpsgenie(api_key=GENIE_KEY)
    await pd.start()
    await og.start()
    world = PagingWorld(
        emu=emulator, clock=clock, pd=pd, og=og, people=people, group=group, sqlite_url=sqlite_url
    )
    try:
        yield world
    finally:
        try:
            await world.stop()
        finally:
            await pd.stop()
            await og.stop()
