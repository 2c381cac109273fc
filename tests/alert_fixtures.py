"""Alerts as Alertmanager and Grafana send them, and a bot whose playbooks route them.

The payloads follow the senders' documented examples (Alertmanager's webhook_config payload
version 4; Grafana Alerting's webhook contact point), with sub-second RFC 3339 times and
offsets as both really send them.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlmodel import col, select

from bot.core.clock import FakeClock
from bot.core.playbooks import load_playbook
from bot.db.models import AlertRecord, Incident, TimelineEntry
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot

TOKEN = "alert-webhook-token-for-tests"
GRAFANA_SECRET = "grafana-hmac-secret-for-tests"

CHECKOUT_PLAYBOOK = """
name: checkout
match: {services: [checkout]}
roles:
  commander: {slack: ["@alice"], required: true}
alerts:
  - match: {alertname: HighErrorRate, service: "checkout|payments"}
    severity: {from_label: severity, map: {critical: sev1, warning: sev3}, default: sev2}
    declare: auto
    group_by: [alertname, service]
  - match: {alertname: "Disk.*"}
    severity: sev3
    declare: ask
"""

GRAFANA_PLAYBOOK = """
name: platform
match: {services: [platform]}
roles:
  commander: {slack: ["@alice"]}
alerts:
  - match: {team: blue}
    severity: sev2
"""


def am_alert(
    *,
    name: str = "HighErrorRate",
    instance: str = "web-1",
    service: str = "checkout",
    starts: str = "2026-11-25T10:15:03.739266876-08:00",
    ends: str = "0001-01-01T00:00:00Z",
    status: str = "firing",
    fingerprint: str | None = None,
    summary: str = "Error rate above 5% on {instance}",
    severity: str = "critical",
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": status,
        "labels": {
            "alertname": name,
            "instance": instance,
            "job": "checkout-api",
            "service": service,
            "severity": severity,
        },
        "annotations": {
            "summary": summary.format(instance=instance),
            "description": "5xx responses over the last 5 minutes",
        },
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=rate%28http_5xx%5B5m%5D%29",
    }
    if fingerprint is not None:
        alert["fingerprint"] = fingerprint
    return alert


def am_payload(
    alerts: Sequence[dict[str, Any]], *, receiver: str = "incident-bot"
) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) for one group."""
    first = alerts[0]["labels"]
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}/{service=~"checkout|payments"}:'
        + f'{{alertname="{first["alertname"]}", service="{first["service"]}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": {"alertname": first["alertname"], "service": first["service"]},
        "commonLabels": {"alertname": first["alertname"], "service": first["service"]},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "alerts": list(alerts),
    }


def grafana_payload() -> dict[str, Any]:
    """Grafana's documented webhook example (two alerts of team blue), with offsets."""
    return {
        "receiver": "My Super Webhook",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
                "annotations": {
                    "description": "The system has high memory usage",
                    "runbook_url": "https://myrunbook.com/runbook/1234",
                    "summary": "This alert was triggered for zone us-1",
                },
                "startsAt": "2026-11-25T19:11:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
                "fingerprint": "c6eadffa33fcdf37",
                "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
                "dashboardURL": "https://play.grafana.org/d/db1",
                "panelURL": "https://play.grafana.org/d/db1?viewPanel=2",
                "values": {"B": 44.23943737541908, "C": 1},
            },
            {
                "status": "firing",
                "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
                "annotations": {
                    "description": "The system has high CPU usage",
                    "runbook_url": "https://myrunbook.com/runbook/1234",
                    "summary": "This alert was triggered for zone eu-1",
                },
                "startsAt": "2026-11-25T19:16:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
                "fingerprint": "bc97ff14869b13e3",
                "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
                "dashboardURL": "",
                "panelURL": "",
                "values": None,
            },
        ],
        "groupLabels": {"team": "blue"},
        "commonLabels": {"team": "blue"},
        "commonAnnotations": {},
        "externalURL": "https://play.grafana.org/",
        "version": "1",
        "groupKey": '{}:{team="blue"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:2]  (blue)",
        "state": "alerting",
        "message": "**Firing**\n\nLabels:\n - alertname = T2\n",
    }


def grafana_signature(body: bytes, *, timestamp: str | None = None) -> str:
    message = f"{timestamp}:".encode() + body if timestamp else body
    return hmac.new(GRAFANA_SECRET.encode(), message, hashlib.sha256).hexdigest()


@dataclass
class AlertWorld:
    """The bot with alert routes, the emulator's people and the alerts channel."""

    bot: BotHarness
    runner: web.AppRunner
    emulator: SlackEmulator
    clock: FakeClock
    alerts_channel: str
    people: dict[str, str] = field(default_factory=dict)

    async def send(
        self,
        payload: Any,
        *,
        path: str = "/webhooks/alertmanager",
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        body = raw if raw is not None else json.dumps(payload).encode()
        sent = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
        if headers is not None:
            sent = {"Content-Type": "application/json", **headers}
        async with self.bot.http.post(
            self.bot.url + path, data=io.BytesIO(body), headers=sent
        ) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def settle(self) -> None:
        await self.bot.settle()

    async def digest(self) -> None:
        """Let the coalesced alert digests come due, and run them."""
        await self.settle()
        self.clock.advance(timedelta(seconds=11))
        await self.settle()

    async def incidents(self) -> list[Incident]:
        async with self.bot.services.sessions() as session:
            result = await session.execute(select(Incident).order_by(col(Incident.id)))
            return list(result.scalars())

    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        async with self.bot.services.sessions() as session:
            result = await session.execute(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
            )
            return list(result.scalars())

    async def alerts(self) -> list[AlertRecord]:
        async with self.bot.services.sessions() as session:
            result = await session.execute(select(AlertRecord).order_by(col(AlertRecord.id)))
            return list(result.scalars())

    def posts_to(self, channel: str) -> list[dict[str, Any]]:
        return [
            c.args
            for c in self.emulator.calls_to("chat.postMessage")
            if c.ok and c.response.get("channel") == channel
        ]

    def buttons(self, channel: str, action: ActionId) -> list[str]:
        found = []
        for args in self.posts_to(channel):
            blocks = args.get("blocks") or []
            if isinstance(blocks, str):
                blocks = json.loads(blocks)
            for block in blocks:
                for element in block.get("elements", []) if block.get("type") == "actions" else []:
                    if element.get("action_id") == action.value:
                        found.append(str(element["value"]))
        return found

    async def press(
        self, action: ActionId, value: str, *, user: str, channel: str, ts: str = "1.2"
    ) -> Any:
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": "alice", "name": "alice", "team_id": "T0001"},
            "api_app_id": "A0001",
            "token": "verification_token",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel},
            "trigger_id": "111.222.valid",
            "team": {"id": "T0001", "domain": "example"},
            "channel": {"id": channel, "name": "alerts"},
            "response_url": self.emulator.response_url(channel=channel, user=user),
            "actions": [
                {
                    "action_id": action.value,
                    "block_id": "alert",
                    "type": "button",
                    "value": value,
                    "action_ts": "1700000000.000200",
                }
            ],
        }
        return await self.bot.interact(payload)


async def start_world(
    *,
    db_url: str,
    emulator: SlackEmulator,
    clock: FakeClock,
    token: str | None = TOKEN,
    grafana_secret: str | None = GRAFANA_SECRET,
) -> AlertWorld:
    people = {"alice": emulator.add_user("alice", real_name="Alice")}
    people["bob"] = emulator.add_user("bob", real_name="Bob")
    alerts_channel = emulator.add_channel("alerts", members=[emulator.bot_user_id])
    extra: dict[str, Any] = {"ALERTS_CHANNEL": alerts_channel}
    if token is not None:
        extra["ALERT_WEBHOOK_TOKEN"] = token
    if grafana_secret is not None:
        extra["GRAFANA_WEBHOOK_SECRET"] = grafana_secret
    settings = make_settings(database_url=db_url, api_url=emulator.url, **extra)
    playbooks = [
        load_playbook(CHECKOUT_PLAYBOOK, filename="checkout.yaml"),
        load_playbook(GRAFANA_PLAYBOOK, filename="platform.yaml"),
    ]
    bot, runner = await start_bot(
        settings=settings, emulator=emulator, clock=clock, playbooks=playbooks
    )
    return AlertWorld(
        bot=bot,
        runner=runner,
        emulator=emulator,
        clock=clock,
        alerts_channel=alerts_channel,
        people=people,
    )


async def stop_world(world: AlertWorld) -> None:
    await stop_bot(world.bot, world.runner)


@asynccontextmanager
async def running_world(
    *, db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[AlertWorld]:
    """`start_world`, then `stop_world` however the test ends."""
    started = await start_world(db_url=db_url, emulator=emulator, clock=clock)
    try:
        yield started
    finally:
        await stop_world(started)
