"""What a signed Slack request must look like before anything acts on it: the one shape check.

Slack documents the shape of every payload it sends; a signed body that breaks it came from a
proxy or an edited replay, never from a person using Slack. It is refused here, before it is
recorded or dispatched, so no listener needs a try/except and nothing refused reaches a
timeline. `check` is pure: it says what is wrong, and the HTTP edge decides how to answer.

Kinds the bot has no listener for (an unknown `action_id`, `callback_id` or event type) are
not refused here: Bolt's fallback listeners ack them (bot/slack/app.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.enums import Severity, Status
from bot.slack.ids import ActionId, BlockId, CallbackId

# A message timestamp as Slack writes it: `1700000000.000100`.
TS_RE = re.compile(r"[0-9]{1,10}\.[0-9]{1,6}")
# Ids in our buttons are database ids: ASCII digits that fit a 32-bit integer column.
MAX_ID = 2**31 - 1
_ID_RE = re.compile(r"[0-9]{1,10}")

# Buttons whose value is an id, and what that id names (as the listeners say it).
ID_BUTTONS: dict[str, str] = {
    ActionId.ACKNOWLEDGE_PAGE: "a page",
    ActionId.ESCALATE_PAGE: "a page",
    ActionId.SNOOZE_REMINDER: "an incident",
    ActionId.COMPLETE_TASK: "a task",
    ActionId.REMOVE_TASK: "a task",
}
CARD_MENUS: dict[str, type[Status] | type[Severity]] = {
    ActionId.STATUS_SELECT: Status,
    ActionId.SEVERITY_SELECT: Severity,
}

# What a person is told when a request they made arrives damaged.
DAMAGED = (
    "That request reached the incident bot damaged ({reason}), so nothing was done. "
    "Try again; if it keeps happening, tell whoever runs the bot."
)
# Fields Bolt reads to build its context: each is a string (or absent / null).
_ID_FIELDS = (
    "type",
    "token",
    "team_id",
    "user_id",
    "channel_id",
    "enterprise_id",
    "api_app_id",
    "trigger_id",
    "response_url",
    "thread_ts",
    "callback_id",
    "action_id",
    "function_execution_id",
    "bot_access_token",
    "user_team",
    "context_team_id",
    "context_enterprise_id",
    "event_id",
)
# Fields that are an object with an `id`, or that id as a string.
_REF_FIELDS = ("enterprise", "team", "user", "channel")
# Fields Bolt walks into as objects when present.
_OBJECT_FIELDS = (
    "event",
    "message",
    "previous_message",
    "item",
    "assistant_thread",
    "view",
    "function_data",
    "container",
    "state",
)


@dataclass(frozen=True)
class Refusal:
    """Why a signed request is refused; `answer` is for the person waiting on it, if any."""

    reason: str
    answer: str | None = None
    block: str | None = None  # a form input to show the answer under (view submissions)


class _Bad(Exception):
    def __init__(self, reason: str, block: str | None = None, answer: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.block = block
        self.answer = answer  # a sentence for the person better than DAMAGED, if any


def check(body: Mapping[str, Any]) -> Refusal | None:
    """None when Slack could have sent this body; else what is wrong with it."""
    try:
        _no_nul(body)
        _envelope(body, "body")
        kind = _kind(body)
        _KINDS.get(kind, _nothing)(body)
    except _Bad as bad:
        return _refusal(body, bad)
    return None


def waiting_person(body: Mapping[str, Any]) -> str | None:
    """The id of the person who is looking at Slack for an answer to this request, if any."""
    if "command" in body:
        user = body.get("user_id")
        return user if isinstance(user, str) and user else None
    if body.get("type") in ("block_actions", "view_submission", "shortcut", "message_action"):
        user = body.get("user")
        found = user.get("id") if isinstance(user, Mapping) else None
        return found if isinstance(found, str) and found else None
    return None


def _no_nul(body: Mapping[str, Any]) -> None:
    """No NUL anywhere: PostgreSQL refuses it in text, and no one types it."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _Bad("it holds a NUL character")
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _refusal(body: Mapping[str, Any], bad: _Bad) -> Refusal:
    if waiting_person(body) is None:
        return Refusal(reason=bad.reason)
    answer = bad.answer or DAMAGED.format(reason=bad.reason)
    return Refusal(reason=bad.reason, answer=answer, block=bad.block)


def _kind(body: Mapping[str, Any]) -> str:
    if "command" in body:
        return "command"
    kind = body.get("type")
    return kind if isinstance(kind, str) else ""


def _nothing(body: Mapping[str, Any]) -> None:
    return None


# --- the envelope every kind shares ----------------------------------------------------------


def _envelope(obj: Mapping[str, Any], where: str, depth: int = 0) -> None:
    """The fields Bolt reads before any listener: strings where strings, objects where objects."""
    for name in _ID_FIELDS:
        _optional_str(obj, name, where)
    for name in _REF_FIELDS:
        value = obj.get(name)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, Mapping):
            raise _Bad(f"{where}.{name} is neither an id nor an object")
        _envelope(value, f"{where}.{name}", depth + 1)
        _optional_str(value, "id", f"{where}.{name}")
    if depth > 2:
        return
    authorizations = obj.get("authorizations")
    if authorizations is not None:
        if not isinstance(authorizations, list):
            raise _Bad(f"{where}.authorizations is not a list")
        for index, entry in enumerate(authorizations):
            if not isinstance(entry, Mapping):
                raise _Bad(f"{where}.authorizations[{index}] is not an object")
            _envelope(entry, f"{where}.authorizations[{index}]", depth + 1)
    for name in _OBJECT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise _Bad(f"{where}.{name} is not an object")
        _envelope(value, f"{where}.{name}", depth + 1)
    urls = obj.get("response_urls")
    if urls is not None:
        if not isinstance(urls, list) or not all(
            isinstance(entry, Mapping) and isinstance(entry.get("response_url"), str)
            for entry in urls
        ):
            raise _Bad(f"{where}.response_urls is not a list of response URLs")


def _optional_str(obj: Mapping[str, Any], name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"{where}.{name} is not a string")
    return value


def _required_str(obj: Mapping[str, Any], name: str, where: str) -> str:
    value = _optional_str(obj, name, where)
    if not value:
        raise _Bad(f"{where}.{name} is missing")
    return value


def _object(obj: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = obj.get(name)
    if not isinstance(value, Mapping):
        raise _Bad(
            f"{where}.{name} is missing" if value is None else f"{where}.{name} is not an object"
        )
    return value


def _user_id(body: Mapping[str, Any]) -> str:
    return _required_str(_object(body, "user", "body"), "id", "body.user")


def _response_url(body: Mapping[str, Any]) -> None:
    url = _required_str(body, "response_url", "body")
    if not url.startswith(("https://", "http://")):
        raise _Bad("body.response_url is not a URL")


# --- each kind ------------------------------------------------------------------------------


def _command(body: Mapping[str, Any]) -> None:
    for name in ("user_id", "command", "channel_id", "trigger_id"):
        _required_str(body, name, "body")
    _response_url(body)
    _optional_str(body, "text", "body")


def _block_actions(body: Mapping[str, Any]) -> None:
    _user_id(body)
    _required_str(body, "trigger_id", "body")
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        raise _Bad("body.actions names no action")
    for index, action in enumerate(actions):
        where = f"body.actions[{index}]"
        if not isinstance(action, Mapping):
            raise _Bad(f"{where} is not an object")
        action_id = _required_str(action, "action_id", where)
        _optional_str(action, "block_id", where)
        _optional_str(action, "value", where)
        if action_id in ID_BUTTONS:
            _id_value(action, where, ID_BUTTONS[action_id])
        elif action_id in CARD_MENUS:
            _menu_value(action, where, CARD_MENUS[action_id])
    if any(
        isinstance(action, Mapping)
        and action.get("action_id") in ID_BUTTONS.keys() | CARD_MENUS.keys()
        for action in actions
    ):
        _response_url(body)  # our buttons all sit on messages, which carry one


def _id_value(action: Mapping[str, Any], where: str, names: str) -> None:
    value = action.get("value")
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or int(value) > MAX_ID:
        raise _Bad(f"{where}.value is not an id", answer=f"That button does not name {names}.")


def _menu_value(action: Mapping[str, Any], where: str, allowed: type[Status | Severity]) -> None:
    option = _object(action, "selected_option", where)
    value = option.get("value")
    if value not in {member.value for member in allowed}:
        raise _Bad(f"{where}.selected_option is not a {allowed.__name__.lower()}")


def _shortcut(body: Mapping[str, Any]) -> None:
    _user_id(body)
    _required_str(body, "callback_id", "body")
    _required_str(body, "trigger_id", "body")


def _message_action(body: Mapping[str, Any]) -> None:
    _shortcut(body)
    message = _object(body, "message", "body")
    ts = _required_str(message, "ts", "body.message")
    if not TS_RE.fullmatch(ts):
        raise _Bad("body.message.ts is not a message timestamp")
    _optional_str(message, "text", "body.message")
    _required_str(_object(body, "channel", "body"), "id", "body.channel")


def _view_submission(body: Mapping[str, Any]) -> None:
    _user_id(body)
    view = _object(body, "view", "body")
    # Bolt reads view.type to tell workflow steps apart, and then their workflow_step.
    if _required_str(view, "type", "body.view") == "workflow_step":
        _object(body, "workflow_step", "body")
    callback_id = _required_str(view, "callback_id", "body.view")
    values = _object(_object(view, "state", "body.view"), "values", "body.view.state")
    for block_id, actions in values.items():
        if not isinstance(actions, Mapping) or not all(
            isinstance(element, Mapping) for element in actions.values()
        ):
            raise _Bad(f"body.view.state.values.{block_id} is not a map of inputs")
    metadata = _optional_str(view, "private_metadata", "body.view") or ""
    if callback_id == CallbackId.DECLARE_MODAL:
        _declare_form(values, metadata)


def _declare_form(values: Mapping[str, Any], metadata: str) -> None:
    for element in values.get(BlockId.SEVERITY, {}).values():
        option = element.get("selected_option")
        if option is not None and (
            not isinstance(option, Mapping) or option.get("value") not in set(Severity)
        ):
            raise _Bad("the severity is not one the form offers", block=BlockId.SEVERITY)
    if not metadata:
        return
    try:
        origin = json.loads(metadata)
    except (ValueError, RecursionError):
        origin = None
    if not isinstance(origin, Mapping) or not all(
        isinstance(origin.get(name), str | None) for name in ("channel", "ts", "user", "text")
    ):
        raise _Bad("the form's saved origin is not the bot's", block=BlockId.TITLE)
    ts = origin.get("ts")
    if ts is not None and not TS_RE.fullmatch(ts):
        raise _Bad("the form's saved message time is not a timestamp", block=BlockId.TITLE)


def _event_callback(body: Mapping[str, Any]) -> None:
    _required_str(body, "event_id", "body")
    event = _object(body, "event", "body")
    kind = _required_str(event, "type", "body.event")
    if kind in ("reaction_added", "reaction_removed"):
        _required_str(event, "user", "body.event")
        _required_str(event, "reaction", "body.event")
        _optional_str(event, "item_user", "body.event")
        item = _object(event, "item", "body.event")
        if _optional_str(item, "type", "body.event.item") == "message":
            _required_str(item, "channel", "body.event.item")
            ts = _required_str(item, "ts", "body.event.item")
            if not TS_RE.fullmatch(ts):
                raise _Bad("body.event.item.ts is not a message timestamp")
    elif kind in ("member_joined_channel", "member_left_channel"):
        _required_str(event, "user", "body.event")
        channel = event.get("channel")
        if not isinstance(channel, str) or not channel:
            raise _Bad("body.event.channel is not a channel id")


def _workflow_step_edit(body: Mapping[str, Any]) -> None:
    _object(body, "workflow_step", "body")


def _url_verification(body: Mapping[str, Any]) -> None:
    _required_str(body, "challenge", "body")


_KINDS = {
    "command": _command,
    "block_actions": _block_actions,
    "shortcut": _shortcut,
    "message_action": _message_action,
    "view_submission": _view_submission,
    "event_callback": _event_callback,
    "url_verification": _url_verification,
    "workflow_step_edit": _workflow_step_edit,
}
