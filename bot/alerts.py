"""From alerts to incidents: intake, grouping, declaring (or asking), timeline, digests.

The webhook answers once the delivery is committed: its routed alerts go into one outbox row
(`PROCESS_ALERTS`) in one transaction, so a kill -9 after the 2xx loses nothing and every
delivery is answered fast even in a storm. The outbox runner then records each alert once
(same fingerprint, else labels, and startsAt: the same alert), declares one incident per group
(or asks in ALERTS_CHANNEL), and writes every alert on the incident's timeline at its own time.
What the channel is told about new and resolved alerts is coalesced: one digest per incident
at most every `DIGEST_EVERY`, whatever the size of the storm; the card's firing count follows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot import paging, usecases
from bot.core.alerts import (
    SOURCE_NAMES,
    Alert,
    Routed,
    entry_text,
    incident_title,
    read_payload,
    route_alert,
)
from bot.core.clock import format_time
from bot.core.enums import EntryKind, EntrySource, Severity, Status
from bot.db.models import AlertGroup, AlertRecord, Incident, SideEffect, TimelineEntry
from bot.db.repo import IncidentRepo
from bot.errors import SideEffectFailed, UserError
from bot.outbox import EffectKind, Executor, enqueue, enqueue_post
from bot.services import Services
from bot.slack import alert_blocks
from bot.usecases import Asked, Declaration, Reply, transaction

log = logging.getLogger(__name__)

DIGEST_EVERY = timedelta(seconds=10)  # at most one channel message about alerts per incident
IN_CLAUSE = 500  # identities looked up per query
CHUNK = 50  # alerts recorded per transaction


@dataclass(frozen=True)
class Intake:
    """What a delivery held."""

    received: int
    routed: int

    @property
    def unrouted(self) -> int:
        return self.received - self.routed


# -- in the request -----------------------------------------------------------------------


async def receive(services: Services, *, source: str, body: bytes) -> Intake:
    """Read, route and commit a delivery (PayloadRefused when it is malformed)."""
    alerts = read_payload(body, source=source)
    routed = [r for r in (route_alert(services.playbooks, a) for a in alerts) if r is not None]
    services.metrics.inc("alerts_received_total", len(alerts), source=source)
    if len(routed) < len(alerts):
        services.metrics.inc("alerts_unrouted_total", len(alerts) - len(routed), source=source)
    if routed:
        async with transaction(services) as session:
            await enqueue(
                session,
                kind=EffectKind.PROCESS_ALERTS,
                incident_id=None,
                now=services.clock.now(),
                payload={"source": source, "alerts": [_routed_json(r) for r in routed]},
            )
    return Intake(received=len(alerts), routed=len(routed))


def _routed_json(routed: Routed) -> dict[str, Any]:
    return {
        "alert": routed.alert.to_json(),
        "playbook": routed.playbook,
        "route": routed.route,
        "severity": routed.severity.value,
        "declare": routed.declare,
        "group": routed.group,
        "group_label": routed.group_label,
    }


def _routed_from_json(data: Mapping[str, Any]) -> Routed:
    return Routed(
        alert=Alert.from_json(data["alert"]),
        playbook=str(data["playbook"]),
        route=int(data["route"]),
        severity=Severity(data["severity"]),
        declare=str(data["declare"]),
        group=str(data["group"]),
        group_label=str(data["group_label"]),
    )


# -- after the answer: grouping, declaring, the timeline ----------------------------------


class _AlreadyDeclared(Exception):
    def __init__(self, ref: str) -> None:
        super().__init__(ref)
        self.ref = ref


class AlertWork:
    """Outbox executors for alerts; bound to the services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def executors(self) -> dict[str, Executor]:
        return {
            EffectKind.PROCESS_ALERTS: self.process,
            EffectKind.ALERT_DIGEST: self.digest,
        }

    async def process(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """A delivery's alerts, group by group."""
        groups: dict[str, list[Routed]] = {}
        for item in payload.get("alerts", []):
            routed = _routed_from_json(item)
            groups.setdefault(routed.group, []).append(routed)
        # One delivery at a time per process: the runner would start them all at once, and on
        # SQLite (one writer) a queue of long writes would keep the webhooks' own short
        # commits waiting; the storm is then absorbed in arrival order instead.
        async with self.services.locks.hold("process-alerts"):
            for items in groups.values():
                await self._process_group(items)

    async def _process_group(self, items: Sequence[Routed]) -> None:
        key = items[0].group
        async with self.services.locks.hold(f"alert-group:{key}"):
            # Short transactions: a webhook's commit never waits long behind this work.
            for start in range(0, len(items), CHUNK):
                declare = await self._record_retrying(items[start : start + CHUNK])
                if declare is not None:
                    await self._declare(declare, key)
                await asyncio.sleep(0)

    async def _record_retrying(self, items: Sequence[Routed]) -> int | None:
        for attempt in range(5):
            try:
                return await self._record(items)
            except IntegrityError:
                # Another process created the group or an alert at the same moment.
                if attempt == 4:
                    raise SideEffectFailed("process_alerts", "kept colliding") from None
        return None

    async def _declare(self, group_id: int, key: str) -> None:
        try:
            await declare_group(self.services, group_id=group_id, actor=None)
        except _AlreadyDeclared:
            pass  # another process declared it a moment ago; the alerts are on it
        except UserError as exc:
            log.warning("alerts of group %s not declared: %s", key[:12], exc.message)

    async def _record(self, items: Sequence[Routed]) -> int | None:
        """Record the alerts once; the group's id when it needs declaring now."""
        services = self.services
        first = items[0]
        source = first.alert.source
        now = services.clock.now()
        async with transaction(services) as session:
            group = (
                await session.execute(
                    select(AlertGroup).where(AlertGroup.key == first.group).with_for_update()
                )
            ).scalar_one_or_none()
            if group is None:
                group = AlertGroup(
                    key=first.group,
                    label=first.group_label,
                    source=source,
                    playbook=first.playbook,
                    route=first.route,
                    severity=first.severity,
                    declare=first.declare,
                    created_at=now,
                )
                session.add(group)
                await session.flush()
            assert group.id is not None
            # One version per alert: a resolved one wins over a firing one in the same batch.
            latest: dict[str, Routed] = {}
            for item in items:
                identity = item.alert.identity
                if identity not in latest or item.alert.ends_at is not None:
                    latest[identity] = item
            existing = await _existing(session, list(latest))
            incident = await _open_incident(session, group)
            on = incident.id if incident is not None else None
            common = _label_pairs(group.label)
            repeats = len(items) - len(latest)
            new: list[dict[str, Any]] = []
            ended: list[dict[str, Any]] = []
            entries: list[dict[str, Any]] = []
            touched: set[int] = set()
            for identity, item in latest.items():
                alert, row = item.alert, existing.get(identity)
                if row is None:
                    new.append(_new_row(item, group_id=group.id, identity=identity, now=now))
                    if on is not None:
                        # The group's incident is open: its entries are written right here.
                        new[-1].update(
                            incident_id=on,
                            fired_recorded=True,
                            resolved_recorded=alert.ends_at is not None,
                        )
                        entries.append(
                            _entry(on, alert.starts_at, alert, False, common, group.label, now)
                        )
                        if alert.ends_at is not None:
                            entries.append(
                                _entry(on, alert.ends_at, alert, True, common, group.label, now)
                            )
                elif alert.ends_at is not None and row.ends_at is None:
                    ended.append({"id": row.id, "ends_at": alert.ends_at})
                    if row.incident_id is not None:
                        touched.add(row.incident_id)
                else:
                    repeats += 1
            if repeats:
                services.metrics.inc("alerts_deduplicated_total", repeats, source=source)
            if new:
                await session.execute(sa.insert(AlertRecord), new)
            if ended:
                await session.execute(sa.update(AlertRecord), ended)
            if entries:
                await session.execute(sa.insert(TimelineEntry), entries)
                assert on is not None
                await _owe_digest(session, on, now)
            # Resolutions of alerts already on an incident (open or not) are recorded there.
            for incident_id in touched:
                await _record_entries(session, services, incident_id, group.label)
            waiting = (
                0 if incident is not None else await _count_unattached_firing(session, group.id)
            )
            if not waiting:
                # Nothing left to declare: a later firing alert of the group asks again.
                group.asked_at = None
                return None
            if group.declare == "ask" and services.settings.ALERTS_CHANNEL:
                if group.asked_at is None:
                    group.asked_at = now
                    await _ask(session, services, group)
                return None
            if group.declare == "ask":
                log.warning(
                    "route %s/alerts[%s] asks, but ALERTS_CHANNEL is not set: declaring",
                    group.playbook,
                    group.route,
                )
            return group.id

    async def digest(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Tell the channel what alerts fired and resolved since the last digest."""
        assert effect.incident_id is not None
        services = self.services
        tz = services.settings.timezone
        async with transaction(services) as session:
            incident = await IncidentRepo(session).by_id(effect.incident_id, for_update=True)
            assert incident is not None
            mine = col(AlertRecord.incident_id) == effect.incident_id
            untold_fired = sa.and_(mine, col(AlertRecord.fired_told).is_(False))
            untold_resolved = sa.and_(
                mine,
                col(AlertRecord.ends_at).is_not(None),
                col(AlertRecord.resolved_told).is_(False),
            )
            fired_ids = await _ids(session, untold_fired, col(AlertRecord.starts_at))
            resolved_ids = await _ids(session, untold_resolved, col(AlertRecord.ends_at))
            if not fired_ids and not resolved_ids:
                return
            # Only the first few are listed by name; every one is marked told.
            fired = await _rows(session, fired_ids[: alert_blocks.MAX_LISTED])
            resolved = await _rows(session, resolved_ids[: alert_blocks.MAX_LISTED])
            await _mark(session, fired_ids, fired_told=True)
            await _mark(session, resolved_ids, resolved_told=True)
            firing, total = await alert_counts(session, effect.incident_id)
            now = services.clock.now()
            text = alert_blocks.digest_text(
                fired=[_told(r, tz, resolved=False) for r in fired],
                resolved=[_told(r, tz, resolved=True) for r in resolved],
                firing_now=firing,
                fired_count=len(fired_ids),
                resolved_count=len(resolved_ids),
            )
            await enqueue_post(session, incident_id=incident.id, now=now, text=text)
            await enqueue(session, kind=EffectKind.SYNC_CARD, incident_id=incident.id, now=now)
            if resolved_ids and firing == 0 and incident.status is not Status.RESOLVED:
                commander = await IncidentRepo(session).commander(effect.incident_id)
                prompt = alert_blocks.resolve_prompt(
                    ref=incident.ref,
                    incident_id=effect.incident_id,
                    total=total,
                    commander=commander,
                )
                await enqueue_post(
                    session,
                    incident_id=incident.id,
                    now=now,
                    text=prompt.text,
                    blocks=prompt.blocks,
                )


async def _ids(session: AsyncSession, where: Any, order: Any) -> list[int]:
    result = await session.execute(
        sa.select(col(AlertRecord.id)).where(where).order_by(order, col(AlertRecord.id))
    )
    return [found for found in result.scalars() if found is not None]


async def _rows(session: AsyncSession, ids: Sequence[int]) -> list[AlertRecord]:
    if not ids:
        return []
    result = await session.execute(select(AlertRecord).where(col(AlertRecord.id).in_(ids)))
    found = {row.id: row for row in result.scalars()}
    return [found[i] for i in ids]


async def _mark(session: AsyncSession, ids: Sequence[int], **values: bool) -> None:
    for start in range(0, len(ids), IN_CLAUSE):
        await session.execute(
            sa.update(AlertRecord)
            .where(col(AlertRecord.id).in_(ids[start : start + IN_CLAUSE]))
            .values(**values)
        )


def _told(row: AlertRecord, tz: Any, *, resolved: bool) -> alert_blocks.ToldAlert:
    at = row.ends_at if resolved and row.ends_at is not None else row.starts_at
    return alert_blocks.ToldAlert(
        when=format_time(at, tz),
        text=_row_entry_text(row, resolved=resolved),
        links=json.loads(row.links or "{}"),
    )


def _new_row(item: Routed, *, group_id: int, identity: str, now: datetime) -> dict[str, Any]:
    alert = item.alert
    return {
        "identity": identity,
        "group_id": group_id,
        "incident_id": None,
        "source": alert.source,
        "name": alert.name[:200],
        "labels": json.dumps(dict(alert.labels)),
        "annotations": json.dumps(dict(alert.annotations)),
        "links": json.dumps(dict(alert.links)),
        "starts_at": alert.starts_at,
        "ends_at": alert.ends_at,
        "received_at": now,
        "fired_recorded": False,
        "resolved_recorded": False,
        "fired_told": False,
        "resolved_told": False,
    }


def _row_alert(row: AlertRecord) -> Alert:
    return Alert(
        source=row.source,
        status="resolved" if row.ends_at else "firing",
        labels=json.loads(row.labels),
        annotations=json.loads(row.annotations),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
    )


def _row_entry_text(row: AlertRecord, *, resolved: bool, common: str = "") -> str:
    return entry_text(_row_alert(row), resolved=resolved, common=_label_pairs(common))


def _label_pairs(label: str) -> dict[str, str]:
    """`alertname=X, service=y` (a group's label) back into labels."""
    pairs = {}
    for part in label.split(", "):
        name, sep, value = part.partition("=")
        if sep:
            pairs[name.strip()] = value.strip()
    return pairs


async def _existing(session: AsyncSession, identities: Sequence[str]) -> dict[str, Any]:
    """id, ends_at and incident_id of the alerts already recorded, by identity."""
    found: dict[str, Any] = {}
    columns = (
        col(AlertRecord.identity),
        col(AlertRecord.id),
        col(AlertRecord.ends_at),
        col(AlertRecord.incident_id),
    )
    for start in range(0, len(identities), IN_CLAUSE):
        chunk = identities[start : start + IN_CLAUSE]
        result = await session.execute(
            sa.select(*columns).where(col(AlertRecord.identity).in_(chunk))
        )
        found.update({row.identity: row for row in result})
    return found


async def _open_incident(session: AsyncSession, group: AlertGroup) -> Incident | None:
    if group.incident_id is None:
        return None
    incident = await IncidentRepo(session).by_id(group.incident_id)
    if incident is None or incident.status is Status.RESOLVED:
        return None
    return incident


def _unattached_firing(group_id: int) -> Any:
    return sa.and_(
        col(AlertRecord.group_id) == group_id,
        col(AlertRecord.incident_id).is_(None),
        col(AlertRecord.ends_at).is_(None),
    )


async def _count_unattached_firing(session: AsyncSession, group_id: int) -> int:
    found = await session.scalar(
        sa.select(sa.func.count()).select_from(AlertRecord).where(_unattached_firing(group_id))
    )
    return int(found or 0)


async def attach(
    session: AsyncSession, services: Services, group: AlertGroup, incident: Incident
) -> None:
    """The group's alerts not yet on an incident go on this one, each at its own time."""
    assert incident.id is not None and group.id is not None
    await session.execute(
        sa.update(AlertRecord)
        .where(col(AlertRecord.group_id) == group.id, col(AlertRecord.incident_id).is_(None))
        .values(incident_id=incident.id)
    )
    await _record_entries(session, services, incident.id, group.label)


async def _record_entries(
    session: AsyncSession, services: Services, incident_id: int, group_label: str
) -> None:
    """Timeline entries for the incident's alerts not yet recorded; the digest is owed."""
    now = services.clock.now()
    result = await session.execute(
        sa.select(
            col(AlertRecord.id),
            col(AlertRecord.source),
            col(AlertRecord.labels),
            col(AlertRecord.annotations),
            col(AlertRecord.starts_at),
            col(AlertRecord.ends_at),
            col(AlertRecord.fired_recorded),
            col(AlertRecord.resolved_recorded),
        ).where(
            col(AlertRecord.incident_id) == incident_id,
            sa.or_(
                col(AlertRecord.fired_recorded).is_(False),
                sa.and_(
                    col(AlertRecord.ends_at).is_not(None),
                    col(AlertRecord.resolved_recorded).is_(False),
                ),
            ),
        )
    )
    rows = result.all()
    if not rows:
        return
    common = _label_pairs(group_label)
    entries: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    for row in rows:
        alert = Alert(
            source=row.source,
            status="firing",
            labels=json.loads(row.labels),
            annotations=json.loads(row.annotations),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )
        if not row.fired_recorded:
            entries.append(
                _entry(incident_id, row.starts_at, alert, False, common, group_label, now)
            )
        if row.ends_at is not None and not row.resolved_recorded:
            entries.append(_entry(incident_id, row.ends_at, alert, True, common, group_label, now))
        flags.append(
            {"id": row.id, "fired_recorded": True, "resolved_recorded": row.ends_at is not None}
        )
    await session.execute(sa.insert(TimelineEntry), entries)
    await session.execute(sa.update(AlertRecord), flags)
    await _owe_digest(session, incident_id, now)


def _entry(
    incident_id: int,
    at: datetime,
    alert: Alert,
    resolved: bool,
    common: Mapping[str, str],
    label: str,
    now: datetime,
) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "occurred_at": at,
        "recorded_at": now,
        "kind": EntryKind.ALERT.value,
        "text": entry_text(alert, resolved=resolved, common=common),
        "source": EntrySource.SYSTEM,
        "alert_group": label[:200],
    }


async def _owe_digest(session: AsyncSession, incident_id: int, now: datetime) -> None:
    """One digest per incident and interval: a storm is told in a few messages, not thousands."""
    pending = await session.execute(
        select(SideEffect.id).where(
            SideEffect.kind == EffectKind.ALERT_DIGEST,
            SideEffect.incident_id == incident_id,
            col(SideEffect.done_at).is_(None),
            col(SideEffect.claimed_until).is_(None),
        )
    )
    if pending.first() is not None:
        return
    session.add(
        SideEffect(
            kind=EffectKind.ALERT_DIGEST,
            incident_id=incident_id,
            payload="{}",
            created_at=now,
            due_at=now + DIGEST_EVERY,
        )
    )


async def alert_counts(session: AsyncSession, incident_id: int) -> tuple[int, int]:
    """How many of the incident's alerts are firing, and how many it has."""
    row = (
        await session.execute(
            sa.select(
                sa.func.count(sa.case((col(AlertRecord.ends_at).is_(None), 1))),
                sa.func.count(),
            )
            .select_from(AlertRecord)
            .where(col(AlertRecord.incident_id) == incident_id)
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


async def firing_count(session: AsyncSession, incident_id: int) -> int | None:
    """For the card: alerts firing now; None for an incident no alert declared or joined."""
    firing, total = await alert_counts(session, incident_id)
    return firing if total else None


async def _ask(session: AsyncSession, services: Services, group: AlertGroup) -> None:
    channel = services.settings.ALERTS_CHANNEL
    assert channel is not None and group.id is not None
    result = await session.execute(
        select(AlertRecord)
        .where(_unattached_firing(group.id))
        .order_by(col(AlertRecord.starts_at), col(AlertRecord.id))
        .limit(1)
    )
    row = result.scalars().one()
    first = _row_alert(row)
    prompt = alert_blocks.declare_prompt(
        group_id=group.id,
        group=group.label,
        playbook=group.playbook,
        severity=group.severity,
        name=first.name,
        summary=first.summary,
        labels=first.labels,
        links=json.loads(row.links or "{}"),
        count=await _count_unattached_firing(session, group.id),
        source=SOURCE_NAMES.get(group.source, group.source),
    )
    await enqueue_post(
        session,
        incident_id=None,
        now=services.clock.now(),
        to=channel,
        text=prompt.text,
        blocks=prompt.blocks,
    )


# -- declaring ----------------------------------------------------------------------------


async def declare_group(services: Services, *, group_id: int, actor: str | None) -> str:
    """Declare the group's incident (once, however many ask at once); its INC-n."""
    async with services.sessions() as session:
        group = await session.get(AlertGroup, group_id)
        if group is None:
            raise UserError("Those alerts are no longer known.")
        incident = await _open_incident(session, group)
        if incident is not None:
            raise _AlreadyDeclared(incident.ref)
        result = await session.execute(
            select(AlertRecord)
            .where(AlertRecord.group_id == group_id, col(AlertRecord.incident_id).is_(None))
            .order_by(col(AlertRecord.starts_at), col(AlertRecord.id))
        )
        pending = list(result.scalars())
    if not pending:
        raise UserError("Those alerts are already on an incident.")
    playbook = services.playbook(group.playbook)
    if playbook is None:
        raise UserError(f"The playbook `{group.playbook}` of those alerts is gone.")
    firing = [row for row in pending if row.ends_at is None] or pending
    first = _row_alert(firing[0])
    declaration = Declaration(
        title=incident_title(first, group.label),
        severity=group.severity,
        service=first.labels.get("service"),
        source="alert",
        # A sender's clock ahead of ours must not start the incident in the future.
        started_at=min(min(row.starts_at for row in pending), services.clock.now()),
    )

    async def then(session: AsyncSession, incident: Incident) -> None:
        row = await session.get(AlertGroup, group_id, with_for_update=True)
        assert row is not None
        # Decided again inside the transaction: two presses, or two processes, declare once.
        open_incident = await _open_incident(session, row)
        if open_incident is not None:
            raise _AlreadyDeclared(open_incident.ref)
        row.incident_id = incident.id
        row.asked_at = None
        await attach(session, services, row, incident)

    who = actor or f"{SOURCE_NAMES.get(group.source, group.source)} ({group.playbook})"
    await paging.declare_incident(
        services, actor=who[:32], declaration=declaration, playbook=playbook, then=then
    )
    async with services.sessions() as session:
        row = await session.get(AlertGroup, group_id)
        assert row is not None and row.incident_id is not None
        incident = await IncidentRepo(session).by_id(row.incident_id)
    assert incident is not None
    return incident.ref


async def declare_from_prompt(
    services: Services,
    *,
    group_id: int,
    actor: str,
    prompt_channel: str | None = None,
    prompt_ts: str | None = None,
) -> Reply:
    """The Declare button of a "Declare incident?" prompt; a second press declares nothing."""
    try:
        ref = await declare_group(services, group_id=group_id, actor=actor)
    except _AlreadyDeclared as exc:
        return Reply(f"Already declared: {exc.ref}.")
    if prompt_channel and prompt_ts:
        # The prompt says it was answered, so nobody else wonders whether to press.
        done = alert_blocks.prompt_answered(ref=ref, actor=actor)
        try:
            await services.slack.chat_update(
                channel=prompt_channel, ts=prompt_ts, text=done.text, blocks=done.blocks
            )
        except SlackApiError as exc:  # cosmetic: the incident is declared either way
            log.warning("could not update the prompt of %s: %s", ref, exc.response.get("error"))
    return Reply(f"Declared {ref}. Opening its channel now…")


async def resolve_from_prompt(
    services: Services, *, incident_id: int, actor: str, channel_id: str | None
) -> Reply:
    """The Resolve button offered once every alert of the incident has resolved."""
    async with services.sessions() as session:
        incident = await IncidentRepo(session).by_id(incident_id)
    if incident is None:
        raise UserError("That incident no longer exists.")
    if incident.status is Status.RESOLVED:
        return Reply(f"{incident.ref} is already resolved.")
    return await usecases.resolve(
        services,
        asked=Asked(actor=actor, number=incident.number, channel_id=channel_id),
        at=None,
        text="every alert has resolved",
    )
