"""Block Kit payloads the bot sends: the summary card, the declare modal, timelines, lists, pages.

Pure functions from plain data to JSON-ready dicts; no Slack calls, no database. Every builder
keeps inside Slack's documented limits (50 blocks per message, 100 per modal, section text 3,000,
header 150, button and option text 75, modal title 24, private_metadata 3,000, topic 250), so a
long title or a huge timeline is cut with "…" instead of being refused by Slack.

Conventions a handler relies on:
- The summary card's actions block has `block_id = "incident-actions:<ref>"` (`card_block_id`);
  `card_ref_from_block_id` reads the ref back. Each select option's value is the enum value.
- A page's actions block has `block_id = "page-actions:<ref>"` (`page_ref_from_block_id`) and
  both buttons carry `value = str(page_id)`.
- The declare modal's inputs use `BlockId` values as block id *and* action id.
- Text people wrote goes through `escape_mrkdwn`, so `<!channel>` in a note never pings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.clock import format_time
from bot.core.enums import EntryKind, Severity, Status
from bot.core.lifecycle import COMMANDER_ROLE, severity_label, status_label
from bot.slack.ids import ActionId, BlockId, CallbackId

Block = dict[str, Any]

# Slack's documented limits (shared/slack/README.md and the Block Kit reference).
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_SECTION_FIELDS = 10
MAX_HEADER_TEXT = 150
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_SELECT_OPTIONS = 100
MAX_MODAL_TITLE = 24
MAX_PRIVATE_METADATA = 3000
MAX_TOPIC = 250
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 3000
MAX_TITLE_INPUT = 200
MAX_IMPACT_INPUT = 3000

ELLIPSIS = "…"
CARD_ACTIONS_PREFIX = "incident-actions:"
PAGE_ACTIONS_PREFIX = "page-actions:"
PRIVATE_OPTION_VALUE = "private"

# What people read. Kept together so wording changes happen in one place.
MODAL_TITLE = "Declare incident"
MODAL_SUBMIT = "Declare"
MODAL_CLOSE = "Cancel"
TITLE_MISSING = "Give the incident a title."
TITLE_TOO_LONG = f"Keep the title to {MAX_TITLE_INPUT} characters or fewer."
NO_OPEN_INCIDENTS = "No open incidents."
NO_TIMELINE_ENTRIES = "No timeline entries yet."
UNASSIGNED = "_unassigned_"


@dataclass(frozen=True)
class CardData:
    """What the pinned summary card shows about one incident."""

    ref: str
    title: str
    severity: Severity
    status: Status
    private: bool
    roles: Mapping[str, Sequence[str]]  # role -> Slack user ids, e.g. {"commander": ["U1"]}
    declared_by: str
    declared_at: datetime
    started_at: datetime | None
    resolved_at: datetime | None
    channel_id: str | None
    playbook: str | None = None
    links: Sequence[tuple[str, str]] = ()  # (title, url)
    alerts_firing: int | None = None  # None: no alert is behind this incident


@dataclass(frozen=True)
class TimelineLine:
    """One timeline entry as a message shows it."""

    occurred_at: datetime
    kind: EntryKind
    text: str
    author: str | None
    permalink: str | None = None


@dataclass(frozen=True)
class ListedIncident:
    """One row of `/incident list`."""

    ref: str
    title: str
    severity: Severity
    status: Status
    channel_id: str | None
    declared_at: datetime
    commander: str | None


@dataclass(frozen=True)
class TaskLine:
    """A follow-up task as listed by `/incident tasks`."""

    id: int
    text: str
    owner: str | None
    due: date | None
    done: bool
    issue: str | None = None  # its tracker issue: "acme/infra#12 (open)", "GitHub issue pending"
    issue_url: str | None = None


@dataclass(frozen=True)
class DeclareForm:
    """What someone submitted in the declare modal."""

    title: str
    severity: Severity
    service: str | None
    impact: str | None
    private: bool


# --- text helpers -------------------------------------------------------------------------------

# Slack tokens that may stay in text people wrote: user, channel and user-group mentions, links,
# and entities Slack itself already escaped (so escaping twice changes nothing).
_KEPT_TOKEN = re.compile(
    r"<@[UW][A-Z0-9]+(?:\|[^<>]*)?>"
    r"|<#C[A-Z0-9]+(?:\|[^<>]*)?>"
    r"|<!subteam\^S[A-Z0-9]+(?:\|[^<>]*)?>"
    r"|<https?://[^\s<>|]+(?:\|[^<>]*)?>"
    r"|&(?:amp|lt|gt);"
)
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]+$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_URL = re.compile(r"^https?://[^\s<>|]+$")


def truncate(text: str, limit: int) -> str:
    """Cut text to at most limit characters, ending with "…" when it was cut."""
    if limit < 1:
        raise ValueError("truncate needs a limit of at least 1")
    if len(text) <= limit:
        return text
    return text[: limit - 1] + ELLIPSIS


def _escape_pieces(text: str) -> list[str]:
    """Split text into pieces that are each safe mrkdwn and must not be cut apart."""
    pieces: list[str] = []
    position = 0
    for match in _KEPT_TOKEN.finditer(text):
        pieces.extend(_ESCAPES.get(char, char) for char in text[position : match.start()])
        pieces.append(match.group(0))
        position = match.end()
    pieces.extend(_ESCAPES.get(char, char) for char in text[position:])
    return pieces


def escape_mrkdwn(text: str) -> str:
    """Escape `&`, `<`, `>` for mrkdwn, keeping mentions, links and entities already escaped."""
    return "".join(_escape_pieces(text))


def escape_truncated(text: str, limit: int) -> str:
    """Escape text and cut it to limit characters without splitting an entity or a mention."""
    pieces = _escape_pieces(text)
    if sum(len(piece) for piece in pieces) <= limit:
        return "".join(pieces)
    kept: list[str] = []
    length = 0
    for piece in pieces:
        if length + len(piece) > limit - len(ELLIPSIS):
            break
        kept.append(piece)
        length += len(piece)
    return "".join(kept) + ELLIPSIS


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _mention(user_id: str) -> str:
    """Mention a user (or user group) by id; anything else is shown as escaped text."""
    if _USER_ID.match(user_id):
        return f"<@{user_id}>"
    if _GROUP_ID.match(user_id):
        return f"<!subteam^{user_id}>"
    return escape_truncated(_one_line(user_id), 100)


def _channel(channel_id: str | None) -> str | None:
    if channel_id is None or not _CHANNEL_ID.match(channel_id):
        return None
    return f"<#{channel_id}>"


def _join_fitting(items: Sequence[str], limit: int, *, separator: str = ", ") -> str:
    """Join whole items up to limit characters, saying how many more did not fit."""
    shown: list[str] = []
    for index, item in enumerate(items):
        rest = len(items) - index - 1
        more = f"{separator}and {rest} more" if rest else ""
        candidate = separator.join([*shown, item]) + more
        if len(candidate) > limit:
            hidden = len(items) - len(shown)
            suffix = f"and {hidden} more" if shown else f"{hidden} in all"
            return separator.join([*shown, suffix]) if shown else suffix
        shown.append(item)
    return separator.join(shown)


def _plain(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(truncate(text, MAX_SECTION_TEXT))}


def _context(*texts: str) -> Block:
    elements = [_mrkdwn(truncate(text, MAX_SECTION_TEXT)) for text in texts]
    return {"type": "context", "elements": elements[:MAX_CONTEXT_ELEMENTS]}


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(_one_line(text), MAX_HEADER_TEXT)}


def _option(label: str, value: str) -> Block:
    return {"text": _plain(label, MAX_OPTION_TEXT), "value": value}


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number:,} {singular if number == 1 else plural}"


# --- summary card -------------------------------------------------------------------------------


def card_block_id(ref: str) -> str:
    """The block id of a summary card's actions, which names the incident."""
    return f"{CARD_ACTIONS_PREFIX}{ref}"


def card_ref_from_block_id(block_id: str) -> str | None:
    """The incident ref behind a summary card action's block id, or None for other blocks."""
    if not block_id.startswith(CARD_ACTIONS_PREFIX):
        return None
    return block_id.removeprefix(CARD_ACTIONS_PREFIX) or None


def _status_options() -> list[Block]:
    return [_option(status_label(status), status.value) for status in Status]


def _severity_options() -> list[Block]:
    return [_option(severity_label(severity), severity.value) for severity in Severity]


def _role_label(role: str) -> str:
    return escape_truncated(_one_line(role.replace("_", " ")).capitalize(), 60)


def _people(user_ids: Sequence[str], limit: int) -> str:
    return _join_fitting([_mention(user_id) for user_id in user_ids], limit) or UNASSIGNED


def _field(label: str, value: str) -> Block:
    return _mrkdwn(truncate(f"*{label}*\n{value}", MAX_FIELD_TEXT))


def _link_label(title: str) -> str:
    # Inside <url|label> nothing may stay unescaped: a mention there would end the link early.
    label = truncate(_one_line(title), 80) or "link"
    return "".join(_ESCAPES.get(char, char) for char in label).replace("|", "¦")


def _links(links: Sequence[tuple[str, str]]) -> str | None:
    shown = [
        f"<{url}|{_link_label(title)}>"
        for title, url in links
        if _URL.match(url) and len(url) <= 1000
    ]
    return _join_fitting(shown, MAX_SECTION_TEXT, separator=" · ") if shown else None


def summary_card(card: CardData, *, tz: ZoneInfo) -> list[Block]:
    """The pinned summary card: header, facts, context, and status/severity selects."""
    commander_ids = card.roles.get(COMMANDER_ROLE, ())
    fields = [
        _field("Severity", severity_label(card.severity)),
        _field("Status", status_label(card.status)),
        _field("Commander", _people(commander_ids, MAX_FIELD_TEXT - 20)),
        _field("Started", format_time(card.started_at or card.declared_at, tz, with_date=True)),
        _field(
            "Declared by",
            f"{_mention(card.declared_by)}, {format_time(card.declared_at, tz, with_date=True)}",
        ),
    ]
    if card.status is Status.RESOLVED and card.resolved_at is not None:
        fields.append(_field("Resolved", format_time(card.resolved_at, tz, with_date=True)))
    if card.alerts_firing is not None:
        fields.append(_field("Alerts firing", f"{card.alerts_firing:,}"))
    other_roles = [(role, ids) for role, ids in card.roles.items() if role != COMMANDER_ROLE]
    blocks: list[Block] = [_header(f"{card.ref}: {card.title}")]
    role_blocks: list[Block] = []
    if len(fields) + len(other_roles) <= MAX_SECTION_FIELDS:
        fields.extend(
            _field(_role_label(role), _people(ids, MAX_FIELD_TEXT - 80))
            for role, ids in other_roles
        )
    else:
        # Too many roles for the ten fields a section allows: list them in one text section.
        lines = [f"*{_role_label(role)}:* {_people(ids, 500)}" for role, ids in other_roles]
        role_blocks.append(_section(_join_fitting(lines, MAX_SECTION_TEXT, separator="\n")))
    blocks.append({"type": "section", "fields": fields})
    blocks.extend(role_blocks)
    context: list[str] = []
    if card.private:
        context.append("🔒 Private incident")
    if card.playbook:
        context.append(f"Playbook: *{escape_truncated(_one_line(card.playbook), 200)}*")
    channel = _channel(card.channel_id)
    if channel:
        context.append(f"Channel: {channel}")
    links = _links(card.links)
    if links:
        context.append(links)
    if context:
        blocks.append(_context(*context))
    current_status = _option(status_label(card.status), card.status.value)
    current_severity = _option(severity_label(card.severity), card.severity.value)
    blocks.append(
        {
            "type": "actions",
            "block_id": card_block_id(card.ref),
            "elements": [
                {
                    "type": "static_select",
                    "action_id": ActionId.STATUS_SELECT.value,
                    "placeholder": _plain("Change status", MAX_OPTION_TEXT),
                    "options": _status_options(),
                    "initial_option": current_status,
                },
                {
                    "type": "static_select",
                    "action_id": ActionId.SEVERITY_SELECT.value,
                    "placeholder": _plain("Change severity", MAX_OPTION_TEXT),
                    "options": _severity_options(),
                    "initial_option": current_severity,
                },
            ],
        }
    )
    return blocks


def card_fallback_text(card: CardData) -> str:
    """The one-line `text` sent with the card, for notifications and old clients."""
    line = (
        f"{card.ref} · {severity_label(card.severity)} · {status_label(card.status)}"
        f" — {_one_line(card.title)}"
    )
    return escape_truncated(line, MAX_FALLBACK_TEXT)


def topic(card: CardData, *, commander_name: str | None = None) -> str:
    """The channel topic: `SEV1 · Investigating · IC @alice`, at most 250 characters."""
    commander_ids = card.roles.get(COMMANDER_ROLE, ())
    if commander_name:
        commander = "@" + _one_line(commander_name).lstrip("@")
    elif commander_ids:
        commander = _mention(commander_ids[0])
    else:
        commander = "unassigned"
    text = f"{severity_label(card.severity)} · {status_label(card.status)} · IC {commander}"
    return truncate(text, MAX_TOPIC)


# --- declare modal ------------------------------------------------------------------------------


def _input(
    block_id: BlockId, label: str, element: Block, *, optional: bool = False, hint: str = ""
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id.value,
        "label": _plain(label, 2000),
        "optional": optional,
        "element": {**element, "action_id": block_id.value},
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _service_options(services: Sequence[str]) -> list[Block] | None:
    """Options for the service select, or None when the list cannot be a select."""
    unique = list(dict.fromkeys(name.strip() for name in services if name.strip()))
    too_long = any(len(name) > MAX_OPTION_VALUE for name in unique)
    if not unique or too_long or len(unique) > MAX_SELECT_OPTIONS:
        return None
    return [_option(_one_line(name), name) for name in unique]


def declare_modal(
    *,
    title: str = "",
    severity: Severity | None = None,
    services: Sequence[str] = (),
    private_metadata: str = "",
    notice: str = "",
) -> Block:
    """The declare modal view (for views.open): title, severity, service, impact, private.

    `notice` is a line shown under the inputs (e.g. that a long message was cut).
    """
    if len(private_metadata) > MAX_PRIVATE_METADATA:
        raise ValueError(
            f"private_metadata is {len(private_metadata)} characters; "
            f"Slack allows {MAX_PRIVATE_METADATA}"
        )
    title_element: Block = {
        "type": "plain_text_input",
        "max_length": MAX_TITLE_INPUT,
        "placeholder": _plain("What is broken, in a few words", 150),
    }
    initial_title = truncate(_one_line(title), MAX_TITLE_INPUT)
    if initial_title:
        title_element["initial_value"] = initial_title
    chosen = severity or Severity.SEV3
    severity_element: Block = {
        "type": "static_select",
        "options": _severity_options(),
        "initial_option": _option(severity_label(chosen), chosen.value),
    }
    options = _service_options(services)
    if options is not None:
        service_input = _input(
            BlockId.SERVICE,
            "Service",
            {
                "type": "static_select",
                "placeholder": _plain("Pick the affected service", 150),
                "options": options,
            },
            optional=True,
            hint="Picks the playbook: who is paged and what the checklist says.",
        )
    else:
        service_input = _input(
            BlockId.SERVICE,
            "Service or playbook",
            {"type": "plain_text_input", "max_length": MAX_OPTION_VALUE},
            optional=True,
            hint="The affected service, e.g. checkout-db; it picks the playbook.",
        )
    private_element: Block = {
        "type": "checkboxes",
        "options": [
            {
                "text": _plain("Private incident", MAX_OPTION_TEXT),
                "description": _plain("Opens a private channel; only those invited see it.", 75),
                "value": PRIVATE_OPTION_VALUE,
            }
        ],
    }
    view: Block = {
        "type": "modal",
        "callback_id": CallbackId.DECLARE_MODAL.value,
        "title": _plain(MODAL_TITLE, MAX_MODAL_TITLE),
        "submit": _plain(MODAL_SUBMIT, MAX_MODAL_TITLE),
        "close": _plain(MODAL_CLOSE, MAX_MODAL_TITLE),
        "blocks": [
            _input(BlockId.TITLE, "Title", title_element),
            _input(BlockId.SEVERITY, "Severity", severity_element),
            service_input,
            _input(
                BlockId.IMPACT,
                "Impact",
                {"type": "plain_text_input", "multiline": True, "max_length": MAX_IMPACT_INPUT},
                optional=True,
                hint="Who or what is affected, as far as you know now.",
            ),
            _input(BlockId.PRIVATE, "Visibility", private_element, optional=True),
        ],
    }
    if notice:
        view["blocks"].append(_context(notice))
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


def _state_element(values: Mapping[str, Any], block_id: BlockId) -> Mapping[str, Any]:
    """The submitted state of one input: by our action id, else the block's only element."""
    actions = values.get(block_id.value)
    if not isinstance(actions, Mapping) or not actions:
        return {}
    element = actions.get(block_id.value)
    if element is None and len(actions) == 1:
        element = next(iter(actions.values()))
    return element if isinstance(element, Mapping) else {}


def _state_text(element: Mapping[str, Any]) -> str | None:
    """The text of an input or the value of a select; None when empty."""
    value: Any
    if element.get("type") in ("static_select", "external_select"):
        option = element.get("selected_option")
        value = option.get("value") if isinstance(option, Mapping) else None
    else:
        value = element.get("value")
    if not isinstance(value, str):
        return None
    return value.strip() or None


def parse_declare_submission(view_state_values: Mapping[str, Any]) -> DeclareForm:
    """Read the declare modal's `view.state.values` as Slack sends it."""
    title = _state_text(_state_element(view_state_values, BlockId.TITLE)) or ""
    severity_value = _state_text(_state_element(view_state_values, BlockId.SEVERITY))
    # The severity input is required with an initial option, so Slack always sends one;
    # default like the modal does rather than fail on a hand-made payload.
    severity = Severity(severity_value) if severity_value else Severity.SEV3
    private_state = _state_element(view_state_values, BlockId.PRIVATE)
    selected = private_state.get("selected_options") or []
    private = any(
        isinstance(option, Mapping) and option.get("value") == PRIVATE_OPTION_VALUE
        for option in selected
    )
    return DeclareForm(
        title=_one_line(title),
        severity=severity,
        service=_state_text(_state_element(view_state_values, BlockId.SERVICE)),
        impact=_state_text(_state_element(view_state_values, BlockId.IMPACT)),
        private=private,
    )


def validation_errors(form: DeclareForm) -> dict[str, str]:
    """Errors for `response_action: errors`, keyed by block id; empty when the form is fine."""
    errors: dict[str, str] = {}
    if not form.title:
        errors[BlockId.TITLE.value] = TITLE_MISSING
    elif len(form.title) > MAX_TITLE_INPUT:
        errors[BlockId.TITLE.value] = TITLE_TOO_LONG
    return errors


# --- timeline -----------------------------------------------------------------------------------

# A line longer than this is cut, so one huge note cannot crowd out the rest of a section.
_MAX_LINE = 1000


def _timeline_line(line: TimelineLine, *, tz: ZoneInfo, with_date: bool) -> str:
    when = format_time(line.occurred_at, tz, with_date=with_date)
    tail = f" ({_mention(line.author)})" if line.author else ""
    if line.permalink and _URL.match(line.permalink) and len(line.permalink) <= 500:
        tail += f" <{line.permalink}|📌>"
    head = f"• {when} — "
    room = max(_MAX_LINE - len(head) - len(tail), 20)
    return head + escape_truncated(_one_line(line.text), room) + tail


def _pack(lines: Iterable[str], *, max_sections: int) -> tuple[list[list[str]], int]:
    """Pack lines into sections of at most 3,000 characters; return them and the lines used."""
    sections: list[list[str]] = []
    length = 0
    used = 0
    for line in lines:
        if sections and length + 1 + len(line) <= MAX_SECTION_TEXT:
            sections[-1].append(line)
            length += 1 + len(line)
        elif len(sections) < max_sections:
            sections.append([line])
            length = len(line)
        else:
            break
        used += 1
    return sections, used


def timeline_blocks(ref: str, lines: Sequence[TimelineLine], *, tz: ZoneInfo) -> list[Block]:
    """The timeline as a message; when it is too long, the latest entries and a note."""
    header = _header(f"Timeline of {ref}")
    if not lines:
        return [header, _section(NO_TIMELINE_ENTRIES)]
    first_day = lines[0].occurred_at.astimezone(tz).date()
    rendered = [
        _timeline_line(line, tz=tz, with_date=line.occurred_at.astimezone(tz).date() != first_day)
        for line in lines
    ]
    sections, used = _pack(rendered, max_sections=MAX_MESSAGE_BLOCKS - 1)
    if used == len(rendered):
        return [header, *(_section("\n".join(section)) for section in sections)]
    # Too long for one message: keep the latest entries (what matters during an incident).
    sections, used = _pack(reversed(rendered), max_sections=MAX_MESSAGE_BLOCKS - 2)
    shown = ["\n".join(reversed(section)) for section in reversed(sections)]
    left_out = len(rendered) - used
    note = (
        f"{_count(left_out, 'earlier entry', 'earlier entries')} of {len(rendered):,} "
        "not shown here. Use `/incident postmortem` for the full document."
    )
    return [header, *(_section(text) for text in shown), _context(note)]


# --- incident list ------------------------------------------------------------------------------


def _listed(item: ListedIncident, *, tz: ZoneInfo) -> str:
    parts = [
        f"*{escape_truncated(item.ref, 40)}* {severity_label(item.severity)}"
        f" · {status_label(item.status)}",
        escape_truncated(_one_line(item.title), 300),
    ]
    channel = _channel(item.channel_id)
    if channel:
        parts.append(channel)
    commander = _mention(item.commander) if item.commander else UNASSIGNED
    declared = format_time(item.declared_at, tz, with_date=True)
    return " — ".join(parts) + f"\nIC {commander} · declared {declared}"


def incident_list_blocks(items: Sequence[ListedIncident], *, tz: ZoneInfo) -> list[Block]:
    """Open incidents, one section each; past 49, a context line counts the rest."""
    if not items:
        return [_section(NO_OPEN_INCIDENTS)]
    if len(items) <= MAX_MESSAGE_BLOCKS:
        return [_section(_listed(item, tz=tz)) for item in items]
    shown = items[: MAX_MESSAGE_BLOCKS - 1]
    blocks = [_section(_listed(item, tz=tz)) for item in shown]
    blocks.append(_context(f"… and {len(items) - len(shown):,} more open incidents."))
    return blocks


# --- pages --------------------------------------------------------------------------------------


def page_block_id(ref: str) -> str:
    """The block id of a page's buttons, which names the incident."""
    return f"{PAGE_ACTIONS_PREFIX}{ref}"


def page_ref_from_block_id(block_id: str) -> str | None:
    """The incident ref behind a page button's block id, or None for other blocks."""
    if not block_id.startswith(PAGE_ACTIONS_PREFIX):
        return None
    return block_id.removeprefix(PAGE_ACTIONS_PREFIX) or None


def page_fallback_text(*, ref: str, title: str, severity: Severity) -> str:
    """The one-line `text` of a page DM (what the push notification shows)."""
    line = f"🚨 You are paged for {ref} ({severity_label(severity)}): {_one_line(title)}"
    return escape_truncated(line, MAX_FALLBACK_TEXT)


def page_blocks(
    *,
    ref: str,
    title: str,
    severity: Severity,
    message: str | None,
    page_id: int,
    channel_id: str | None,
) -> list[Block]:
    """A page sent by DM, with Acknowledge and Escalate buttons carrying the page id."""
    headline = (
        f"🚨 You are paged for *{escape_truncated(ref, 40)}* ({severity_label(severity)}): "
        f"{escape_truncated(_one_line(title), 500)}"
    )
    blocks: list[Block] = [_section(headline)]
    if message and message.strip():
        quoted = "\n".join(
            f"> {line}" for line in escape_truncated(message.strip(), 2000).splitlines()
        )
        blocks.append(_section(quoted))
    channel = _channel(channel_id)
    if channel:
        blocks.append(_context(f"Join {channel} to help."))
    blocks.append(
        {
            "type": "actions",
            "block_id": page_block_id(ref),
            "elements": [
                {
                    "type": "button",
                    "action_id": ActionId.ACKNOWLEDGE_PAGE.value,
                    "text": _plain("Acknowledge", MAX_OPTION_TEXT),
                    "style": "primary",
                    "value": str(page_id),
                },
                {
                    "type": "button",
                    "action_id": ActionId.ESCALATE_PAGE.value,
                    "text": _plain("Escalate", MAX_OPTION_TEXT),
                    "value": str(page_id),
                },
            ],
        }
    )
    return blocks


def task_list_blocks(ref: str, tasks: Sequence[TaskLine]) -> list[Block]:
    """Tasks with Complete and Remove buttons (value = task id); at most 50 blocks."""
    out: list[Block] = [_header(f"Tasks of {ref}")]
    if not tasks:
        out.append(_section("_No tasks yet — `/incident task text [@owner] [due YYYY-MM-DD]`_"))
        return out
    room = MAX_MESSAGE_BLOCKS - 2
    for task in tasks[:room]:
        details = []
        if task.owner:
            details.append(f"owner {_mention(task.owner)}")
        if task.due:
            details.append(f"due {task.due.isoformat()}")
        if task.issue:
            issue = escape_truncated(task.issue, 300)
            details.append(f"<{task.issue_url}|{issue}>" if task.issue_url else issue)
        text = escape_truncated(_one_line(task.text), 2500)
        line = f"~{text}~ (done)" if task.done else f"*{text}*"
        if details:
            line += " — " + ", ".join(details)
        section = _section(line)
        buttons = []
        if not task.done:
            buttons.append(
                {
                    "type": "button",
                    "action_id": ActionId.COMPLETE_TASK.value,
                    "text": _plain("Complete", MAX_OPTION_TEXT),
                    "value": str(task.id),
                }
            )
        buttons.append(
            {
                "type": "button",
                "action_id": ActionId.REMOVE_TASK.value,
                "text": _plain("Remove", MAX_OPTION_TEXT),
                "value": str(task.id),
            }
        )
        out.append(section)
        out.append({"type": "actions", "block_id": f"task:{task.id}", "elements": buttons})
        if len(out) >= room:
            break
    shown = (len(out) - 1) // 2
    if shown < len(tasks):
        out.append(_context(f"… and {_count(len(tasks) - shown, 'more task', 'more tasks')}."))
    return out


def checklist_text(heading: str, items: Sequence[str]) -> str:
    """A playbook checklist as one message: the heading, then one bullet per item."""
    lines = "\n".join(f"• {escape_mrkdwn(item)}" for item in items)
    return truncate(f":clipboard: {heading}:\n{lines}", MAX_SECTION_TEXT)
