"""What a playbook pages and when: the rules the live bot and the simulator both follow.

Pure: no Slack, no database, no clock of its own. The live bot (`bot.paging`, `bot.usecases`)
asks these functions what to page at declaration, which timers to set and what a timer, a page
or an acknowledgement changes; `bot.core.simulation` asks the same functions on a virtual clock,
so `python -m bot playbooks simulate` cannot drift from what an incident really does.

The rules:

- At declaration, a role named by no escalation tier is paged at once (its pagers; its people
  by Slack DM once they are found), and so is every tier due at once (`after: 0s`): nothing
  that is due now waits for a timer.
- Every later tier has an escalation timer at `declared_at + after`. When it fires, the tier is
  paged unless the incident is resolved, someone acknowledged, or that tier (or a later one)
  was paged already.
- A page to a role with `ack_timeout` brings the next tier forward to `paged_at + ack_timeout`,
  never later than that tier's own `after`.
- An acknowledgement stops the escalation (and nothing else); resolving stops escalation,
  status-update reminders and the checklist nudge, and sets the postmortem's due date.
- A status-update reminder comes one interval (for the severity) after the declaration, after
  the last reminder, and after the last status update.
- A checklist is posted at declaration and again as a nudge 15 minutes later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.core.clock import humanize_duration
from bot.core.enums import Severity
from bot.core.playbooks import Playbook, Role

CHECKLIST_NUDGE_AFTER = timedelta(minutes=15)


class PagerKind(StrEnum):
    """What a page goes through (the `provider` of a page row)."""

    SLACK = "slack"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    WEBHOOK = "webhook"


class Due(StrEnum):
    """The kinds of timers these rules set; the values are `bot.timers.TimerKind`'s."""

    ESCALATE = "escalate"
    STATUS_REMINDER = "status_reminder"
    CHECKLIST_NUDGE = "checklist_nudge"
    POSTMORTEM_DUE = "postmortem_due"


# What an acknowledgement stops, and what resolving stops.
STOPPED_BY_ACK: tuple[Due, ...] = (Due.ESCALATE,)
STOPPED_BY_RESOLUTION: tuple[Due, ...] = (Due.ESCALATE, Due.STATUS_REMINDER, Due.CHECKLIST_NUDGE)


@dataclass(frozen=True)
class Timer:
    """A timer to set: what, when, and for an escalation, which tier (counted from 1)."""

    kind: Due
    at: datetime
    tier: int = 0


@dataclass(frozen=True)
class DeclarationPlan:
    """What a declaration pages at once and which timers it sets."""

    paged_now: Mapping[str, int]  # role -> tier it is paged as (0: named by no tier)
    tiers_now: tuple[int, ...]  # tiers due at declaration, paged then
    timers: tuple[Timer, ...]  # in the order the live bot sets them
    checklist: bool  # whether a checklist is posted


def role_pagers(role: Role) -> list[PagerKind]:
    """The pagers other than Slack DMs that page a role, in the order they are sent."""
    kinds = [
        (PagerKind.PAGERDUTY, role.pagerduty),
        (PagerKind.OPSGENIE, role.opsgenie),
        (PagerKind.WEBHOOK, role.webhook),
    ]
    return [kind for kind, target in kinds if target is not None]


def due_at_declaration(playbook: Playbook, tier: int) -> bool:
    """Whether tier `tier` (from 1) is due the moment the incident is declared."""
    return playbook.tiers[tier - 1].after <= timedelta(0)


def tiered_roles(playbook: Playbook) -> set[str]:
    """The roles some escalation tier names."""
    return {name for tier in playbook.tiers for name in tier.page}


def roles_paged_at_declaration(playbook: Playbook) -> dict[str, int]:
    """Role -> tier for every role paged at declaration: untiered roles (0), then tiers due now.

    A role named by several tiers due now is paged once, as the first of them.
    """
    tiered = tiered_roles(playbook)
    paged = {name: 0 for name in playbook.roles if name not in tiered}
    for index, tier in enumerate(playbook.tiers, start=1):
        if due_at_declaration(playbook, index):
            for name in tier.page:
                paged.setdefault(name, index)
    return paged


def plan_declaration(
    playbook: Playbook, *, severity: Severity, declared_at: datetime
) -> DeclarationPlan:
    """Who is paged at once and which timers a declaration sets."""
    tiers_now = tuple(
        index for index in range(1, len(playbook.tiers) + 1) if due_at_declaration(playbook, index)
    )
    timers = [
        Timer(Due.ESCALATE, declared_at + tier.after, index)
        for index, tier in enumerate(playbook.tiers, start=1)
        if index not in tiers_now
    ]
    reminder = status_reminder_at(playbook, severity=severity, now=declared_at)
    if reminder is not None:
        timers.append(Timer(Due.STATUS_REMINDER, reminder))
    if playbook.checklist:
        timers.append(Timer(Due.CHECKLIST_NUDGE, declared_at + CHECKLIST_NUDGE_AFTER))
    return DeclarationPlan(
        paged_now=roles_paged_at_declaration(playbook),
        tiers_now=tiers_now,
        timers=tuple(timers),
        checklist=bool(playbook.checklist),
    )


def may_escalate(
    *, tier: int, tier_count: int, resolved: bool, acknowledged: bool, highest_tier_paged: int
) -> bool:
    """Whether tier `tier` is paged now: open, unacknowledged, and not paged yet."""
    return (
        not resolved and not acknowledged and 1 <= tier <= tier_count and tier > highest_tier_paged
    )


def tier_pages(playbook: Playbook, tier: int) -> list[str]:
    """What tier `tier` pages, as the timeline names it: its roles, then its Opsgenie responders."""
    spec = playbook.tiers[tier - 1]
    return [*spec.page] + (["Opsgenie responders"] if spec.opsgenie is not None else [])


def escalation_text(playbook: Playbook, tier: int, *, actor: str | None, elapsed: timedelta) -> str:
    """The timeline entry of a tier being paged, `elapsed` after the declaration."""
    who = ", ".join(tier_pages(playbook, tier))
    if actor:
        return f"Escalated to tier {tier} ({who}): by <@{actor}>"
    if due_at_declaration(playbook, tier):
        # Nobody was paged before it, so there was nothing to acknowledge: say what happened.
        return f"Paged {who} (tier {tier})"
    return (
        f"Escalated to tier {tier} ({who}): nobody acknowledged within {humanize_duration(elapsed)}"
    )


def next_tier_brought_forward(
    playbook: Playbook,
    *,
    role_name: str | None,
    tier: int,
    paged_at: datetime,
    declared_at: datetime,
) -> Timer | None:
    """The escalation timer a page to `role_name` (as tier `tier`) moves, or None.

    A role's `ack_timeout` makes the next tier come at `paged_at + ack_timeout`, never later
    than that tier's own `after`.
    """
    role = playbook.roles.get(role_name or "")
    next_tier = tier + 1
    if role is None or role.ack_timeout is None or next_tier > len(playbook.tiers):
        return None
    at = min(paged_at + role.ack_timeout, declared_at + playbook.tiers[next_tier - 1].after)
    return Timer(Due.ESCALATE, at, next_tier)


def status_reminder_at(playbook: Playbook, *, severity: Severity, now: datetime) -> datetime | None:
    """When the next status-update reminder is due, counted from `now`; None: no reminders."""
    every = playbook.reminder_interval(severity)
    return now + every if every is not None else None


def postmortem_due_at(playbook: Playbook, *, resolved_at: datetime) -> datetime | None:
    """When the postmortem of an incident resolved at `resolved_at` is due; None: no date."""
    due_in = playbook.postmortem.due_in
    return resolved_at + due_in if due_in is not None else None


def roles_with_people(playbook: Playbook, tier: int) -> list[str]:
    """The roles tier `tier` pages that are staffed with Slack people (paged by DM)."""
    return [name for name in playbook.tiers[tier - 1].page if playbook.roles[name].slack]
