"""The Slack calls a committed change owes, one executor per side-effect kind.

Each executor reads the incident as it is now (so a late run shows the latest state), makes
its calls, and writes back what Slack gave it (channel id, card ts). A SlackApiError that a
retry can cure propagates to the runner, which retries it; one that cannot is set aside.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Mapping
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from slack_sdk.errors import SlackApiError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from bot import alerts, postmortems
from bot.core.channel_name import channel_name
from bot.core.clock import humanize_duration
from bot.core.enums import Status
from bot.core.lifecycle import severity_label
from bot.db.models import Incident, SideEffect
from bot.db.repo import IncidentRepo
from bot.effect_runner import take_next
from bot.errors import SideEffectFailed
from bot.outbox import TO_ANNOUNCEMENTS, TO_INCIDENT, EffectKind, Executor
from bot.services import Services
from bot.slack import blocks
from bot.slack.app import SlackIdentity

log = logging.getLogger(__name__)

MAX_NAME_ATTEMPTS = 50
# How far Slack's clock may be behind ours: a channel made before its incident was declared
# (less this) is not that incident's, whatever its name.
CLOCK_SKEW = timedelta(minutes=5)


async def _both(first: Awaitable[Any], second: Awaitable[Any]) -> None:
    """Run both to the end, then raise the first one's error, if any, else the second's."""
    for outcome in await asyncio.gather(first, second, return_exceptions=True):
        if isinstance(outcome, BaseException):
            raise outcome


def _digest(message: Mapping[str, Any]) -> str:
    """What a message shows, in 64 characters (to tell whether an update changes it)."""
    return hashlib.sha256(json.dumps(message, sort_keys=True).encode()).hexdigest()


CardFacts = tuple[dict[str, list[str]], int | None]  # the roles' holders, the alerts firing


class SlackEffects:
    """Executors bound to the services."""

    def __init__(self, services: Services, identity: SlackIdentity) -> None:
        self.services = services
        self.client = services.slack
        self.identity = identity  # who the bot is (auth.test), asked once per process
        # SET_UP_CHANNEL begun as its channel was made here (claimed right behind it).
        self._setting_up: dict[int, asyncio.Task[None]] = {}
        services.effects.read_with_adopted(self._card_facts_in)

    def executors(self) -> dict[str, Executor]:
        return {
            EffectKind.CREATE_CHANNEL: self.create_channel,
            EffectKind.SET_UP_CHANNEL: self.set_up_channel,
            EffectKind.SET_TOPIC: self.set_topic,
            EffectKind.TELL_DECLARER: self.tell_declarer,
            EffectKind.INVITE: self.invite,
            EffectKind.POST_CARD: self.post_card,
            EffectKind.SYNC_CARD: self.sync_card,
            EffectKind.ANNOUNCE: self.announce,
            EffectKind.POST: self.post,
            EffectKind.CAPTURE_PIN: self.capture_pin,
            EffectKind.UPLOAD_POSTMORTEM: self.upload_postmortem,
            EffectKind.BOOKMARK: self.bookmark,
        }

    # -- helpers --------------------------------------------------------------------------

    async def _incident(self, effect: SideEffect) -> Incident:
        assert effect.incident_id is not None
        async with self.services.sessions() as session:
            incident = await IncidentRepo(session).by_id(effect.incident_id)
        assert incident is not None
        return incident

    async def _channel(self, effect: SideEffect) -> tuple[Incident, str]:
        incident = await self._incident(effect)
        if incident.channel_id is None:
            # Its channel is not created yet (that effect is being retried): wait for it.
            raise SideEffectFailed(effect.kind, f"{incident.ref} has no channel yet")
        return incident, incident.channel_id

    async def _save(self, incident: Incident, **values: str) -> None:
        """Write back what Slack gave us (channel, card ts, topic)."""
        async with self.services.sessions() as session, session.begin():
            await session.execute(
                sa.update(Incident)
                .where(col(Incident.id) == incident.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        for name, value in values.items():
            setattr(incident, name, value)

    async def card(self, incident: Incident, facts: CardFacts | None = None) -> blocks.CardData:
        """The card's data: the incident, and (unless given) its roles and firing alerts now."""
        assert incident.id is not None
        roles, firing = facts or await self._card_facts(incident.id)
        playbook = self.services.playbook(incident.playbook)
        links = [(b.title, str(b.link)) for b in playbook.bookmarks] if playbook else []
        return blocks.CardData(
            ref=incident.ref,
            title=incident.title,
            severity=incident.severity,
            status=incident.status,
            private=incident.private,
            roles=roles,
            declared_by=incident.declared_by,
            declared_at=incident.declared_at,
            started_at=incident.started_at,
            resolved_at=incident.resolved_at,
            channel_id=incident.channel_id,
            playbook=incident.playbook,
            links=links,
            alerts_firing=firing,
        )

    async def _card_facts(self, incident_id: int) -> CardFacts:
        async with self.services.sessions() as session:
            return await self._card_facts_in(session, incident_id)

    @staticmethod
    async def _card_facts_in(session: AsyncSession, incident_id: int) -> CardFacts:
        roles = await IncidentRepo(session).roles(incident_id)
        return roles, await alerts.firing_count(session, incident_id)

    # -- executors ------------------------------------------------------------------------

    async def create_channel(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        assert effect.incident_id is not None
        # Declared by this process a moment ago: the incident and what its card shows besides,
        # as the declaring transaction committed them, not read back.
        snapshot = self.services.effects.snapshot(effect.incident_id)
        if snapshot is None:
            await self._create_channel(await self._incident(effect), None)
        else:
            await self._create_channel(snapshot.incident, snapshot.read)

    async def _create_channel(self, incident: Incident, facts: CardFacts | None) -> None:
        if incident.channel_id is None:
            channel = await self._new_channel(incident)
            incident.channel_id, incident.channel_name = channel["id"], channel["name"]
            card_sent = asyncio.Event()
            setting_up = self._set_up_ahead(incident, facts, card_sent)
            try:
                if setting_up is not None:
                    # The card is the set-up's longest path: it leaves before the write-back.
                    await card_sent.wait()
                await self._save(incident, channel_id=channel["id"], channel_name=channel["name"])
            except BaseException:
                if setting_up is not None:  # it waits for the retry, which finds the channel
                    setting_up.cancel()
                    await asyncio.gather(setting_up, return_exceptions=True)
                raise
            if setting_up is not None:
                self._setting_up[incident.id or 0] = setting_up

    async def _new_channel(self, incident: Incident) -> dict[str, Any]:
        """The incident's channel from Slack, under the first name not taken by another.

        A name taken by a channel this bot made for this incident is that channel: Slack did
        the call but its answer was lost, or the process died before writing the id back.
        Made again, the incident would have two channels.
        """
        local_day = incident.declared_at.astimezone(self.services.settings.timezone).date()
        made: dict[str, dict[str, Any]] | None = None
        for attempt in range(MAX_NAME_ATTEMPTS):
            name = channel_name(
                declared=local_day, number=incident.number, title=incident.title, attempt=attempt
            )
            try:
                response = await self.client.conversations_create(
                    name=name, is_private=incident.private
                )
                return dict(response["channel"])
            except SlackApiError as exc:
                if exc.response.get("error") != "name_taken":
                    raise
            if made is None:
                made = await self._made_since(incident)
            if name in made:
                log.warning("%s: its channel #%s was made already; kept", incident.ref, name)
                return made[name]
        raise SideEffectFailed("conversations.create", "every channel name was taken")

    async def _made_since(self, incident: Incident) -> dict[str, dict[str, Any]]:
        """The open channels this bot made since the incident was declared, by name."""
        me = (await self.identity.load()).bot_user_id
        since = incident.declared_at.timestamp() - CLOCK_SKEW.total_seconds()
        made: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            page = await self.client.users_conversations(
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            for channel in page.get("channels") or []:
                mine = channel.get("creator") == me
                if mine and float(channel.get("created") or 0) >= since:
                    made[str(channel.get("name"))] = dict(channel)
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return made

    def _set_up_ahead(
        self, incident: Incident, facts: CardFacts | None, card_sent: asyncio.Event
    ) -> asyncio.Task[None] | None:
        """Begin SET_UP_CHANNEL at once if it is claimed right behind: its invitation and card
        go out while the channel's id is written back (which the incident's other lanes wait
        for)."""
        ahead = take_next()
        if ahead is None or ahead.kind != EffectKind.SET_UP_CHANNEL:
            return None
        assert incident.channel_id is not None
        users = json.loads(ahead.payload).get("users", [])
        return asyncio.create_task(
            self._set_up(incident, incident.channel_id, users, facts, card_sent)
        )

    async def tell_declarer(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """The channel's link: privately in the command's reply, or by DM after the form."""
        incident, channel = await self._channel(effect)
        text = f"{incident.ref} declared: <#{channel}>"
        response_url = payload.get("response_url")
        try:
            if response_url:
                await self.client.webhook(response_url).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
            else:
                await self.client.chat_postMessage(channel=incident.declared_by, text=text)
        except Exception:  # the channel exists either way; this is only a courtesy link
            log.warning("could not send the declarer of %s its channel", incident.ref)

    async def invite(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        _, channel = await self._channel(effect)
        await self._invite(channel, payload.get("users", []))

    async def _invite(self, channel: str, users: list[str]) -> None:
        for user in users:
            try:
                await self.client.conversations_invite(channel=channel, users=user)
            except SlackApiError as exc:
                error = exc.response.get("error")
                if error in {"already_in_channel", "cant_invite_self"}:
                    continue
                if error in {"user_not_found", "user_is_deleted", "cant_invite"}:
                    log.warning("could not invite %s to %s: %s", user, channel, error)
                    continue
                raise

    async def set_up_channel(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """A new incident's channel made ready at once: the declarer in, the card pinned.

        The invitation and the card go out together; the card shows the incident as it is
        when posted, so it needs no update.
        """
        under_way = self._setting_up.pop(effect.incident_id or 0, None)
        if under_way is not None:  # begun as its channel was made
            await under_way
            return
        incident, channel = await self._channel(effect)
        await self._set_up(incident, channel, payload.get("users", []), None)

    async def _set_up(
        self,
        incident: Incident,
        channel: str,
        users: list[str],
        facts: CardFacts | None,
        card_sent: asyncio.Event | None = None,
    ) -> None:
        """The invitation and the card together; `card_sent` is set as the card leaves (or
        once the set-up is over without sending it)."""
        try:
            await _both(
                self._invite(channel, users),
                self._post_and_pin(incident, channel, facts, card_sent),
            )
        finally:
            if card_sent is not None:
                card_sent.set()

    async def set_topic(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        incident, channel = await self._channel(effect)
        await self._set_topic(incident, channel, await self.card(incident))

    async def _set_topic(self, incident: Incident, channel: str, card: blocks.CardData) -> None:
        """Every topic change shows in the channel: set it only when it differs, and once.

        The new topic is claimed in the database before the call: of two runs that want it
        at once (the declaration's and a card sync, in two lanes), one makes the call. A call
        that fails gives the claim back for its retry.
        """
        topic, before = blocks.topic(card), incident.topic
        claim = col(Incident.topic).is_distinct_from(topic)
        if topic == before or not await self._record_topic(incident, topic, only_if=claim):
            return
        try:
            await self.client.conversations_setTopic(channel=channel, topic=topic)
        except BaseException:
            await self._record_topic(incident, before, only_if=col(Incident.topic) == topic)
            raise

    async def _record_topic(
        self, incident: Incident, topic: str | None, *, only_if: sa.ColumnElement[bool]
    ) -> bool:
        """Record the topic where the incident's row meets `only_if`; whether it did."""
        async with self.services.sessions() as session, session.begin():
            changed = await session.execute(
                sa.update(Incident)
                .where(col(Incident.id) == incident.id, only_if)
                .values(topic=topic)
                .execution_options(synchronize_session=False)
            )
        incident.topic = topic
        return bool(changed.rowcount)  # type: ignore[attr-defined]

    async def _post_and_pin(
        self,
        incident: Incident,
        channel: str,
        facts: CardFacts | None = None,
        card_sent: asyncio.Event | None = None,
    ) -> str:
        if incident.card_ts is not None:  # run again after the card went out
            return incident.card_ts
        shown = self._card_message(await self.card(incident, facts))
        posting = self.client.chat_postMessage(channel=channel, **shown)
        if card_sent is not None:
            card_sent.set()  # its waiter runs once this call has gone out
        response = await posting
        ts = str(response["ts"])
        # Its ts is kept whether or not the pin succeeds: a retry pins it, never posts another.
        await _both(
            self._save(incident, card_ts=ts, card_digest=_digest(shown)), self._pin(channel, ts)
        )
        return ts

    async def _pin(self, channel: str, ts: str) -> None:
        try:
            await self.client.pins_add(channel=channel, timestamp=ts)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_pinned":
                raise

    async def post_card(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        incident, channel = await self._channel(effect)
        await self._post_and_pin(incident, channel)

    async def sync_card(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        incident, channel = await self._channel(effect)
        card = await self.card(incident)
        shown = self._card_message(card)
        digest = _digest(shown)
        if incident.card_ts is not None and digest != incident.card_digest:
            # An update that would change nothing is not sent.
            await self.client.chat_update(channel=channel, ts=incident.card_ts, **shown)
            await self._save(incident, card_digest=digest)
        await self._set_topic(incident, channel, card)

    def _card_message(self, card: blocks.CardData) -> dict[str, Any]:
        return {
            "text": blocks.card_fallback_text(card),
            "blocks": blocks.summary_card(card, tz=self.services.settings.timezone),
        }

    async def announce(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        target = self.services.settings.INCIDENTS_CHANNEL
        incident = await self._incident(effect)
        if not target or incident.private:
            return  # a private incident is never announced
        text = self._announcement(incident, payload)
        await self.client.chat_postMessage(channel=target, text=text)

    def _announcement(self, incident: Incident, payload: Mapping[str, Any]) -> str:
        title = blocks.escape_mrkdwn(incident.title)
        sev = severity_label(incident.severity)
        where = f" — <#{incident.channel_id}>" if incident.channel_id else ""
        event = payload.get("event")
        if event == "declared":
            return f":rotating_light: *{incident.ref}* declared ({sev}): {title}{where}"
        if event == "update":
            text = blocks.escape_mrkdwn(str(payload.get("text", "")))
            return f":mega: *{incident.ref}* ({sev}) update from <@{payload.get('author')}>: {text}"
        if event == Status.RESOLVED and incident.resolved_at is not None:
            began = incident.started_at or incident.declared_at
            lasted = humanize_duration(incident.resolved_at - began)
            return f":white_check_mark: *{incident.ref}* resolved after {lasted}: {title}{where}"
        return f":arrows_counterclockwise: *{incident.ref}* reopened ({sev}): {title}{where}"

    async def post(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """A message to the incident channel, the announcement channel, or a person (DM)."""
        to = str(payload.get("to", TO_INCIDENT))
        if to == TO_ANNOUNCEMENTS:
            channel = self.services.settings.INCIDENTS_CHANNEL
            if not channel:
                return
        elif to == TO_INCIDENT:
            _, channel = await self._channel(effect)
        else:
            channel = to  # a user id: Slack opens the DM
        extra: dict[str, Any] = {}
        if payload.get("blocks"):
            extra["blocks"] = payload["blocks"]
        await self.client.chat_postMessage(
            channel=channel,
            text=blocks.truncate(str(payload["text"]), 3000),
            unfurl_links=False,
            **extra,
        )

    async def capture_pin(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        incident, channel = await self._channel(effect)
        ts = str(payload["ts"])
        history = await self.client.conversations_history(
            channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
        )
        messages: list[dict[str, Any]] = history.get("messages") or []
        message = messages[0] if messages else {}
        permalink = None
        try:
            permalink = (await self.client.chat_getPermalink(channel=channel, message_ts=ts))[
                "permalink"
            ]
        except SlackApiError as exc:
            if exc.response.get("error") not in {"message_not_found", "channel_not_found"}:
                raise
        async with self.services.sessions() as session, session.begin():
            entry = await IncidentRepo(session).message_entry(incident.id or 0, ts)
            if entry is None:
                return
            if not entry.text:
                entry.text = str(message.get("text") or "(message not found)")
            entry.author = entry.author or message.get("user")
            entry.permalink = entry.permalink or permalink

    async def upload_postmortem(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        incident, channel = await self._channel(effect)
        document = await postmortems.draft(
            self.services, incident_id=incident.id or 0, refresh_names=True
        )
        await self.client.files_upload_v2(
            channel=channel,
            content=document.markdown,
            filename=document.filename,
            title=f"{incident.ref} postmortem draft",
            initial_comment=postmortems.summary(document, tz=self.services.settings.timezone),
        )

    async def bookmark(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        _, channel = await self._channel(effect)
        await self.client.bookmarks_add(
            channel_id=channel,
            title=blocks.truncate(str(payload["title"]), 100),
            type="link",
            link=str(payload["link"]),
        )
