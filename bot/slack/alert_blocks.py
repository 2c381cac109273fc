"""What the bot posts about alerts: the "Declare incident?" prompt, digests, the Resolve offer.

Alert text comes from monitoring systems and anyone who writes alert rules: it is escaped like
text people typed, so an annotation can never ping a channel or forge a link.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bot.core.enums import Severity
from bot.core.lifecycle import severity_label
from bot.slack.blocks import escape_mrkdwn, escape_truncated
from bot.slack.ids import ActionId

Block = dict[str, Any]

MAX_LISTED = 10  # alerts listed by name in one digest; the timeline keeps every one
MAX_LABEL_FIELDS = 10
MAX_TEXT = 2900


@dataclass(frozen=True)
class Prompt:
    text: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class ToldAlert:
    """One alert as a digest lists it."""

    when: str
    text: str
    links: Mapping[str, str] = field(default_factory=dict)


def _link(title: str, url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    return f"<{safe}|{title}>"


def links_text(links: Mapping[str, str]) -> str:
    """`Source · Dashboard · Panel · Silence` as Slack links."""
    shown = [_link(title, url) for title, url in links.items()]
    return " · ".join(link for link in shown if link)


def _fit(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def digest_text(
    *,
    fired: Sequence[ToldAlert],
    resolved: Sequence[ToldAlert],
    firing_now: int,
    fired_count: int | None = None,
    resolved_count: int | None = None,
) -> str:
    """One message for everything that fired and resolved since the last one.

    `fired`/`resolved` are the alerts listed (the first few); the counts are of all of them.
    """
    lines: list[str] = []
    for shown, count, heading in (
        (fired, fired_count, ":rotating_light: *{n} new alert{s}* ({firing:,} firing now)"),
        (
            resolved,
            resolved_count,
            ":white_check_mark: *{n} alert{s} resolved* ({firing:,} still firing)",
        ),
    ):
        total = len(shown) if count is None else count
        if not total:
            continue
        lines.append(heading.format(n=f"{total:,}", s="s" if total != 1 else "", firing=firing_now))
        lines += [_line(alert) for alert in shown[:MAX_LISTED]]
        if total > MAX_LISTED:
            lines.append(f"… and {total - MAX_LISTED:,} more on the timeline")
    return _fit("\n".join(lines))


def _line(alert: ToldAlert) -> str:
    links = links_text(alert.links)
    text = f"• `{alert.when}` {escape_truncated(alert.text, 400)}"
    return f"{text} — {links}" if links else text


def declare_prompt(
    *,
    group_id: int,
    group: str,
    playbook: str,
    severity: Severity,
    name: str,
    summary: str,
    labels: Mapping[str, str],
    links: Mapping[str, str],
    count: int,
    source: str,
) -> Prompt:
    """ "Declare incident?" in ALERTS_CHANNEL, with the alert and a Declare button."""
    head = f"*Declare incident?* {escape_truncated(name, 150)}"
    if summary:
        head += f": {escape_truncated(summary, 500)}"
    facts = (
        f"{source} · group `{escape_truncated(group, 200)}` · playbook *{escape_mrkdwn(playbook)}*"
        f" · {severity_label(severity)}"
    )
    if count > 1:
        facts += f" · {count:,} alerts firing"
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _fit(head)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _fit(facts)}]},
    ]
    pairs = sorted(labels.items())[:MAX_LABEL_FIELDS]
    if pairs:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {
                        "type": "mrkdwn",
                        "text": f"*{escape_truncated(k, 100)}*\n{escape_truncated(v, 500)}",
                    }
                    for k, v in pairs
                ],
            }
        )
    shown_links = links_text(links)
    if shown_links:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": shown_links}]})
    blocks.append(
        {
            "type": "actions",
            "block_id": f"alert-group:{group_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": ActionId.DECLARE_FROM_ALERT.value,
                    "text": {"type": "plain_text", "text": "Declare incident"},
                    "style": "primary",
                    "value": str(group_id),
                }
            ],
        }
    )
    text = f"Declare incident? {name}" + (f": {summary}" if summary else "")
    return Prompt(text=escape_truncated(text, 500), blocks=blocks)


def resolve_prompt(*, ref: str, incident_id: int, total: int, commander: str | None) -> Prompt:
    """Every alert of the incident has resolved: the commander is offered a Resolve button."""
    who = f"<@{commander}> " if commander else ""
    alerts = "its alert has" if total == 1 else f"all {total:,} of its alerts have"
    text = f"{who}{alerts} resolved. Resolve {ref}?"
    text = text[0].upper() + text[1:] if not commander else text
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f":white_check_mark: {text}"}},
        {
            "type": "actions",
            "block_id": f"alert-resolve:{ref}",
            "elements": [
                {
                    "type": "button",
                    "action_id": ActionId.RESOLVE_FROM_ALERTS.value,
                    "text": {"type": "plain_text", "text": f"Resolve {ref}"},
                    "style": "primary",
                    "value": str(incident_id),
                }
            ],
        },
    ]
    return Prompt(text=text, blocks=blocks)


def prompt_answered(*, ref: str, actor: str) -> Prompt:
    """A "Declare incident?" prompt once someone pressed Declare."""
    text = f":white_check_mark: Declared as *{ref}* by <@{actor}>."
    return Prompt(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
