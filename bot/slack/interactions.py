"""Menus on the summary card, the declare form and the message shortcut."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot import followups, paging, reminders, usecases
from bot.core.enums import Severity, Status
from bot.core.grammar import parse_incident_ref
from bot.core.playbooks import all_services
from bot.errors import UserError
from bot.paging import escalation
from bot.services import Services
from bot.slack import blocks
from bot.slack.errors import after_ack
from bot.slack.ids import ActionId

MAX_ORIGIN_TEXT = 2000  # leaves room in private_metadata (3,000) for the ids around it


def _card_incident(action: dict[str, Any]) -> int:
    ref = blocks.card_ref_from_block_id(action.get("block_id", ""))
    if ref is None:
        raise UserError("That menu does not belong to an incident card.")
    return parse_incident_ref(ref)


async def _answer(respond: AsyncRespond, reply: usecases.Reply) -> None:
    await respond(text=reply.text, response_type="ephemeral", replace_original=False)


async def _change_from_card(
    services: Services, body: dict[str, Any], action: dict[str, Any]
) -> usecases.Reply:
    asked = usecases.Asked(
        actor=body["user"]["id"],
        number=_card_incident(action),
        channel_id=body.get("channel", {}).get("id"),
    )
    value = action["selected_option"]["value"]
    if action["action_id"] == ActionId.STATUS_SELECT:
        return await usecases.change_status(
            services, asked=asked, status=Status(value), at=None, text=None
        )
    return await usecases.change_severity(services, asked=asked, severity=Severity(value))


async def declare_shortcut(
    ack: AsyncAck,
    shortcut: dict[str, Any],
    body: dict[str, Any],
    client: AsyncWebClient,
    services: Services,
) -> None:
    """Message shortcut: the form, remembering the message it came from."""
    await ack()

    async def open_form() -> None:
        message = shortcut.get("message") or {}
        text = str(message.get("text") or "")
        origin = {
            "channel": (shortcut.get("channel") or {}).get("id"),
            "ts": message.get("ts"),
            "user": message.get("user") if isinstance(message.get("user"), str) else None,
        }
        metadata, kept = fit_origin(origin, text)
        notice = ""
        if kept < len(text):
            notice = (
                f"The message is long: the incident's timeline keeps its first {kept:,} "
                f"of {len(text):,} characters."
            )
        view = blocks.declare_modal(
            title=blocks.truncate(" ".join(text.split()), 150),
            services=all_services(services.playbooks),
            private_metadata=metadata,
            notice=notice,
        )
        # trigger_id lives 3 s: views.open runs right after the ack.
        await client.views_open(trigger_id=shortcut["trigger_id"], view=view)

    after_ack(services, open_form(), body=body, respond=None, client=client)


def fit_origin(origin: dict[str, Any], text: str) -> tuple[str, int]:
    """The origin as private_metadata, with as much of text as fits Slack's 3,000 characters.

    Returns the metadata and how many characters of text it keeps. Length is measured after
    JSON escaping (`й` is `\\u0439`, six characters), so any text fits by being cut.
    """

    def dumped(count: int) -> str:
        return json.dumps({**origin, "text": text[:count]}, ensure_ascii=False)

    low, high = 0, min(len(text), MAX_ORIGIN_TEXT)
    if len(dumped(high)) <= blocks.MAX_PRIVATE_METADATA:
        return dumped(high), high
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        if len(dumped(middle)) <= blocks.MAX_PRIVATE_METADATA:
            low = middle
        else:
            high = middle - 1
    if len(dumped(low)) > blocks.MAX_PRIVATE_METADATA:
        return "", 0  # even the ids do not fit: declare without an origin
    return dumped(low), low


async def declare_submitted(
    ack: AsyncAck,
    body: dict[str, Any],
    view: dict[str, Any],
    services: Services,
    client: AsyncWebClient,
) -> None:
    """The declare form: field errors go back in the ack, the incident is declared after."""
    form = blocks.parse_declare_submission(view["state"]["values"])
    errors = blocks.validation_errors(form)
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    await ack()
    origin = None
    meta = json.loads(view.get("private_metadata") or "{}")
    if meta.get("channel") and meta.get("ts"):
        origin = usecases.Origin(
            channel_id=meta["channel"],
            ts=meta["ts"],
            user=meta.get("user"),
            text=meta.get("text", ""),
        )
    declaration = usecases.Declaration(
        title=form.title,
        severity=form.severity,
        private=form.private,
        service=form.service,
        impact=form.impact,
        origin=origin,
        source="shortcut" if origin is not None else "form",
    )
    work = paging.declare_incident(services, actor=body["user"]["id"], declaration=declaration)
    after_ack(services, work, body=body, respond=None, client=client)


ActionUseCase = Callable[[Services, dict[str, Any], dict[str, Any]], Awaitable[usecases.Reply]]
IdUseCase = Callable[[Services, int, dict[str, Any], dict[str, Any]], Awaitable[usecases.Reply]]


def action_listener(use_case: ActionUseCase) -> Callable[..., Awaitable[None]]:
    """A listener for a button or menu: ack, then run one use case and answer privately.

    Even reading the payload happens after the ack: a listener that raises after acking
    loses the ack.
    """

    async def listener(
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        services: Services,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()

        async def run() -> None:
            await _answer(respond, await use_case(services, body, action))

        after_ack(services, run(), body=body, respond=respond, client=client)

    return listener


def id_button(names: str, use_case: IdUseCase) -> Callable[..., Awaitable[None]]:
    """A listener for buttons whose value is an id: the id is checked before the use case."""

    async def with_id(
        services: Services, body: dict[str, Any], action: dict[str, Any]
    ) -> usecases.Reply:
        value = str(action.get("value", ""))
        if not (value.isascii() and value.isdigit() and len(value) <= 10):
            raise UserError(f"That button does not name {names}.")
        return await use_case(services, int(value), body, action)

    return action_listener(with_id)


async def _finish_task(
    services: Services, task_id: int, body: dict[str, Any], action: dict[str, Any]
) -> usecases.Reply:
    channel = body.get("channel", {}).get("id")
    return await followups.finish_task(
        services,
        task_id=task_id,
        asked=usecases.Asked(actor=body["user"]["id"], channel_id=channel),
        remove=action["action_id"] == ActionId.REMOVE_TASK,
    )


async def _answer_page(
    services: Services, page_id: int, body: dict[str, Any], action: dict[str, Any]
) -> usecases.Reply:
    actor = body["user"]["id"]
    if action["action_id"] == ActionId.ACKNOWLEDGE_PAGE:
        return await escalation.acknowledge(services, page_id=page_id, by=actor)
    return await escalation.escalate_now(services, page_id=page_id, actor=actor)


async def _snooze(
    services: Services, incident_id: int, body: dict[str, Any], action: dict[str, Any]
) -> usecases.Reply:
    return await reminders.snooze(services, incident_id=incident_id, actor=body["user"]["id"])


card_menu_selected = action_listener(_change_from_card)  # status / severity on the card
task_button = id_button("a task", _finish_task)  # Complete / Remove on `/incident tasks`
page_button = id_button("a page", _answer_page)  # Acknowledge / Escalate on a page DM
snooze_button = id_button("an incident", _snooze)  # Snooze on a status-update reminder
