"""From alerts to incidents: one incident per group, repeats, resolution, asking, storms."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot import postmortems
from bot.core.clock import FakeClock
from bot.core.enums import EntryKind, Severity, Status
from bot.db.models import Page
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from tests.alert_fixtures import (
    AlertWorld,
    am_alert,
    am_payload,
    grafana_payload,
    grafana_signature,
    running_world,
)
from tests.slack_schema import assert_all_calls_valid

FIRST_START = datetime(2026, 11, 25, 18, 15, 3, 739266, tzinfo=UTC)


@pytest.fixture
async def world(
    db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[AlertWorld]:
    async with running_world(db_url=db_url, emulator=emulator, clock=clock) as started:
        yield started


@pytest.fixture
async def sqlite_world(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[AlertWorld]:
    async with running_world(db_url=sqlite_url, emulator=emulator, clock=clock) as started:
        yield started


def _alert_texts(entries: list) -> list[str]:  # type: ignore[type-arg]
    return [e.text for e in entries if e.kind == EntryKind.ALERT]


async def test_the_first_firing_alert_declares_and_its_time_is_the_start(
    world: AlertWorld,
) -> None:
    status, _ = await world.send(am_payload([am_alert()]))
    assert status == 200
    await world.settle()
    [incident] = await world.incidents()
    assert incident.title == "HighErrorRate: Error rate above 5% on web-1"
    assert incident.severity is Severity.SEV1  # severity=critical through the route's map
    assert incident.playbook == "checkout"
    assert incident.started_at == FIRST_START
    assert incident.declared_by.startswith("Alertmanager")
    entries = await world.timeline(incident.id or 0)
    assert entries[0].kind == EntryKind.ALERT
    assert entries[0].occurred_at == FIRST_START
    # The alert names itself, the labels that tell it apart, its summary, and that it fired.
    assert entries[0].text == (
        "HighErrorRate fired (instance=web-1, job=checkout-api, severity=critical): "
        "Error rate above 5% on web-1"
    )
    # The playbook's commander is found, given the role and paged as usual.
    async with world.bot.services.sessions() as session:
        from bot.db.repo import IncidentRepo, PageRepo

        assert await IncidentRepo(session).commander(incident.id or 0) == world.people["alice"]
        pages: list[Page] = list(await PageRepo(session).of_incident(incident.id or 0))
    assert [p.target for p in pages] == [world.people["alice"]]
    # The postmortem's first timeline line is the alert, at its own time.
    document = await postmortems.draft(world.bot.services, incident_id=incident.id or 0)
    timeline = document.markdown.split("### Timeline:")[1].strip().splitlines()
    assert timeline[0].startswith("* 10:15 AM PST: HighErrorRate fired")


async def test_later_alerts_join_repeats_add_nothing_resolutions_are_recorded(
    world: AlertWorld,
) -> None:
    first = am_alert()
    await world.send(am_payload([first]))
    await world.settle()
    second = am_alert(instance="web-2", starts="2026-11-25T18:17:00.5+00:00")
    # Alertmanager re-sends the whole group on every change and every repeat_interval.
    for _ in range(3):
        status, _ = await world.send(am_payload([first, second]))
        assert status == 200
    # A second Alertmanager (HA pair) sends the same alerts, templated differently.
    twin = dict(first, annotations={"summary": "re-templated"})
    await world.send(am_payload([twin], receiver="other-am"))
    await world.settle()
    [incident] = await world.incidents()
    texts = _alert_texts(await world.timeline(incident.id or 0))
    assert len(texts) == 2
    assert texts[1].startswith("HighErrorRate fired (instance=web-2")
    entries = await world.timeline(incident.id or 0)
    assert entries[[e.text for e in entries].index(texts[1])].occurred_at == datetime(
        2026, 11, 25, 18, 17, 0, 500000, tzinfo=UTC
    )
    counters = world.bot.services.metrics.render()[0].decode()
    assert 'alerts_deduplicated_total{source="alertmanager"} 6' in counters

    # One resolves: recorded at its endsAt; the incident stays open while the other fires.
    resolved = dict(first, status="resolved", endsAt="2026-11-25T10:25:00.25-08:00")
    await world.send(am_payload([resolved, second]))
    await world.send(am_payload([resolved, second]))  # and again: still one entry
    await world.digest()
    entries = await world.timeline(incident.id or 0)
    done = [e for e in entries if e.kind == EntryKind.ALERT and " resolved" in e.text]
    assert [e.occurred_at for e in done] == [datetime(2026, 11, 25, 18, 25, 0, 250000, tzinfo=UTC)]
    channel = incident.channel_id or ""
    assert world.buttons(channel, ActionId.RESOLVE_FROM_ALERTS) == []

    # The last one resolves: the commander is offered Resolve in the channel.
    second_done = dict(second, status="resolved", endsAt="2026-11-25T18:26:00Z")
    await world.send(am_payload([resolved, second_done]))
    await world.digest()
    assert world.buttons(channel, ActionId.RESOLVE_FROM_ALERTS) == [str(incident.id)]
    offer = [p for p in world.posts_to(channel) if "Resolve INC-" in p.get("text", "")]
    assert f"<@{world.people['alice']}>" in offer[0]["text"]
    reply = await world.press(
        ActionId.RESOLVE_FROM_ALERTS, str(incident.id), user=world.people["alice"], channel=channel
    )
    assert reply.status == 200
    await world.settle()
    [incident] = await world.incidents()
    assert incident.status is Status.RESOLVED
    assert_all_calls_valid(world.emulator.calls)

    # A new firing alert of the group after the incident is over opens a new incident.
    later = am_alert(instance="web-3", starts="2026-11-25T18:29:00Z")
    await world.send(am_payload([later]))
    await world.settle()
    assert len(await world.incidents()) == 2


async def test_the_card_shows_how_many_alerts_are_firing(sqlite_world: AlertWorld) -> None:
    world = sqlite_world
    alerts = [am_alert(instance=f"web-{i}") for i in range(3)]
    await world.send(am_payload(alerts))
    await world.digest()
    [incident] = await world.incidents()
    # As first posted: the alerts the declaring transaction attached (read in it, not after).
    [posted] = [
        c.args
        for c in world.emulator.calls_to("chat.postMessage")
        if c.ok and c.args.get("channel") == incident.channel_id and c.args.get("blocks")
    ]
    assert "*Alerts firing*\\n3" in json.dumps(posted["blocks"])
    updates = [c.args for c in world.emulator.calls_to("chat.update") if c.ok]
    card = json.dumps(updates[-1]["blocks"])
    assert "*Alerts firing*" in card and "\\n3" in card
    await world.send(
        am_payload([dict(alerts[0], status="resolved", endsAt="2026-11-25T18:20:00Z")])
    )
    await world.digest()
    updates = [c.args for c in world.emulator.calls_to("chat.update") if c.ok]
    assert "*Alerts firing*\\n2" in json.dumps(updates[-1]["blocks"])
    assert incident.channel_id is not None


async def test_groups_follow_group_by_one_incident_each(sqlite_world: AlertWorld) -> None:
    world = sqlite_world
    await world.send(am_payload([am_alert(service="checkout"), am_alert(service="payments")]))
    await world.settle()
    incidents = await world.incidents()
    assert len(incidents) == 2


async def test_ask_posts_a_prompt_once_and_two_presses_declare_once(world: AlertWorld) -> None:
    disk = am_alert(name="DiskFull", summary="Disk 95% full on {instance}", severity="warning")
    status, _ = await world.send(am_payload([disk]))
    assert status == 200
    await world.settle()
    assert await world.incidents() == []
    prompts = world.posts_to(world.alerts_channel)
    assert len(prompts) == 1
    text = json.dumps(prompts[0]["blocks"])
    assert "Declare incident?" in text and "Disk 95% full on web-1" in text
    assert "instance" in text and "prometheus.example.org" in text  # labels and links
    # The same alert again, and a second one of the group: no second prompt.
    await world.send(am_payload([disk]))
    await world.send(am_payload([disk, dict(disk, labels={**disk["labels"], "instance": "b"})]))
    await world.settle()
    assert len(world.posts_to(world.alerts_channel)) == 1
    [group] = world.buttons(world.alerts_channel, ActionId.DECLARE_FROM_ALERT)
    [posted] = [
        c.response["ts"]
        for c in world.emulator.calls_to("chat.postMessage")
        if c.ok and c.response.get("channel") == world.alerts_channel
    ]
    replies = await asyncio.gather(
        *(
            world.press(
                ActionId.DECLARE_FROM_ALERT,
                group,
                user=world.people[who],
                channel=world.alerts_channel,
                ts=posted,
            )
            for who in ("bob", "alice")
        )
    )
    assert [r.status for r in replies] == [200, 200]
    await world.settle()
    [incident] = await world.incidents()
    assert incident.severity is Severity.SEV3
    assert incident.started_at == FIRST_START
    assert len(_alert_texts(await world.timeline(incident.id or 0))) == 2
    answers = sorted(str(c.args.get("text")) for c in world.emulator.responses)
    assert answers == ["Already declared: INC-1.", "Declared INC-1. Opening its channel now…"]
    assert_all_calls_valid(world.emulator.calls)
    # The prompt now says who declared what; pressing again later declares nothing either.
    [update] = [c for c in world.emulator.calls_to("chat.update") if c.args.get("ts") == posted]
    assert "Declared as *INC-1* by <@" in update.args["text"]
    reply = await world.press(
        ActionId.DECLARE_FROM_ALERT, group, user=world.people["bob"], channel=world.alerts_channel
    )
    assert reply.status == 200
    await world.settle()
    assert len(await world.incidents()) == 1


async def test_grafana_alerts_declare_with_their_links(sqlite_world: AlertWorld) -> None:
    world = sqlite_world
    raw = json.dumps(grafana_payload()).encode()
    headers = {"X-Grafana-Alerting-Signature": grafana_signature(raw)}
    status, body = await world.send(None, raw=raw, path="/webhooks/grafana", headers=headers)
    assert (status, body["routed"]) == (200, 2)
    await world.digest()
    [incident] = await world.incidents()
    assert incident.started_at == datetime(2026, 11, 25, 17, 11, 3, 157076, tzinfo=UTC)
    assert incident.severity is Severity.SEV2
    texts = _alert_texts(await world.timeline(incident.id or 0))
    assert texts[0] == "High memory usage fired (zone=us-1): This alert was triggered for zone us-1"
    digest = [
        p["text"] for p in world.posts_to(incident.channel_id or "") if "new alert" in p["text"]
    ]
    assert len(digest) == 1
    assert "2 new alerts" in digest[0]
    assert "|Dashboard>" in digest[0] and "|Silence>" in digest[0] and "|Panel>" in digest[0]


async def test_a_storm_opens_one_incident_per_group_and_loses_no_alert(
    sqlite_world: AlertWorld,
) -> None:
    """2,000 alerts in two groups, 100 new per delivery as Alertmanager batches them."""
    world = sqlite_world
    start = datetime(2026, 11, 25, 18, 20, tzinfo=UTC)
    sent = 0
    deliveries = []
    for batch in range(10):
        for service in ("checkout", "payments"):
            alerts = [
                am_alert(
                    service=service,
                    instance=f"{service}-{batch}-{i}",
                    starts=(start + timedelta(seconds=batch * 6, milliseconds=i)).isoformat(),
                )
                for i in range(100)
            ]
            sent += len(alerts)
            deliveries.append(am_payload(alerts))
    results = await asyncio.gather(*(world.send(d) for d in deliveries))
    assert {status for status, _ in results} == {200}
    assert sent == 2000
    await world.digest()
    await world.digest()
    incidents = await world.incidents()
    assert len(incidents) == 2
    assert len(await world.alerts()) == 2000
    per_incident = [len(_alert_texts(await world.timeline(i.id or 0))) for i in incidents]
    assert per_incident == [1000, 1000]
    # The channels hear of the storm in a few digests, not a message per alert.
    for incident in incidents:
        digests = [p for p in world.posts_to(incident.channel_id or "") if "new alert" in p["text"]]
        assert 1 <= len(digests) <= 3
    # The postmortem counts the storm per group and minute; the record keeps every alert.
    document = await postmortems.draft(world.bot.services, incident_id=incidents[0].id or 0)
    timeline = document.markdown.split("### Timeline:")[1].split("```mermaid")[0]
    lines = [line for line in timeline.splitlines() if line.startswith("* ")]
    assert len(lines) < 20
    storm = [line for line in lines if "alerts fired in group" in line]
    assert sum(int(line.split(": ")[1].split(" ")[0].replace(",", "")) for line in storm) == 1000


async def test_an_ask_group_asks_again_once_its_pending_alerts_resolved(
    sqlite_world: AlertWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world = sqlite_world
    disk = am_alert(name="DiskFull", summary="Disk full on {instance}")
    await world.send(am_payload([disk]))
    await world.settle()
    done = dict(disk, status="resolved", endsAt="2026-11-25T18:20:00Z")
    await world.send(am_payload([done]))
    await world.settle()
    assert len(world.posts_to(world.alerts_channel)) == 1
    again = am_alert(name="DiskFull", starts="2026-11-25T18:25:00Z", summary="Disk full again")
    await world.send(am_payload([again]))
    await world.settle()
    prompts = world.posts_to(world.alerts_channel)
    assert len(prompts) == 2 and "Disk full again" in prompts[1]["text"]
    assert await world.incidents() == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_odd_but_valid_alerts_are_kept_and_shown_safely(world: AlertWorld) -> None:
    odd = am_alert(instance="web-\x00<!channel>", summary="<!here> *bold* & <http://x|y>")
    odd["labels"]["empty"] = ""
    odd["labels"]["alertname"] = "HighErrorRate"
    status, _ = await world.send(am_payload([odd]))
    assert status == 200
    await world.digest()
    [incident] = await world.incidents()
    [entry] = [e for e in await world.timeline(incident.id or 0) if e.kind == EntryKind.ALERT]
    assert "\x00" not in entry.text
    digest = [
        p["text"] for p in world.posts_to(incident.channel_id or "") if "new alert" in p["text"]
    ]
    assert "<!channel>" not in digest[0] and "<!here>" not in digest[0]
