"""Playing a playbook on a virtual clock, without Slack: `python -m bot playbooks simulate`.

The run drives the rules of `bot.core.paging_plan` — the module the live bot asks at
declaration, when a timer fires, when a page goes out and when someone acknowledges — on a
virtual clock that starts at the declaration (+00:00). Every page is assumed to succeed.
Timers are kept by the same keys as the live bot's (a later one with the same key replaces the
earlier), and at the same moment timers fire before a person's acknowledgement or update, and
the incident is resolved last, when the run ends (`--for`).

Output shows offsets from the declaration only, never a wall-clock time, so it is the same on
every machine and in every time zone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.core.enums import Severity
from bot.core.lifecycle import COMMANDER_ROLE
from bot.core.paging_plan import (
    STOPPED_BY_ACK,
    STOPPED_BY_RESOLUTION,
    Due,
    PagerKind,
    Timer,
    may_escalate,
    next_tier_brought_forward,
    plan_declaration,
    postmortem_due_at,
    role_pagers,
    status_reminder_at,
    tiered_roles,
)
from bot.core.playbooks import OpsgenieTarget, Playbook, Role, select_playbook
from bot.core.playbooks import format_duration as span
from bot.oncall.base import describe_source

# The virtual declaration; only offsets from it are ever shown.
DECLARED_AT = datetime(2000, 1, 1, tzinfo=UTC)
# Longer than this on a sev1 with nobody acknowledging and nobody new paged is a finding.
SEV1_QUIET_LIMIT = timedelta(minutes=15)
# The slowest status-update reminders each severity warrants.
WARRANTED_REMINDERS = {
    Severity.SEV1: timedelta(minutes=30),
    Severity.SEV2: timedelta(hours=1),
    Severity.SEV3: timedelta(hours=4),
    Severity.SEV4: timedelta(days=1),
}
_PAGER_NAMES = {
    PagerKind.SLACK: "Slack DM",
    PagerKind.PAGERDUTY: "PagerDuty",
    PagerKind.OPSGENIE: "Opsgenie",
    PagerKind.WEBHOOK: "webhook",
}


class EventKind(StrEnum):
    DECLARED = "declared"
    PAGE = "page"
    NOBODY_TO_PAGE = "nobody_to_page"
    BROUGHT_FORWARD = "brought_forward"
    CHECKLIST = "checklist"
    CHECKLIST_NUDGE = "checklist_nudge"
    STATUS_REMINDER = "status_reminder"
    STATUS_UPDATE = "status_update"
    ACK = "ack"
    ACK_IGNORED = "ack_ignored"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Ack:
    """`--ack ROLE@DURATION`: the role acknowledges `after` the declaration."""

    role: str
    after: timedelta


@dataclass(frozen=True)
class Event:
    """One thing that happens, `at` after the declaration."""

    at: timedelta
    kind: EventKind
    text: str
    role: str | None = None
    via: PagerKind | None = None
    tier: int | None = None  # pages: 0 when paged at declaration as a role no tier names
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Simulation:
    """A whole run: what was played, why this playbook, what happened, what to look at."""

    playbook: Playbook
    selection: str
    severity: Severity
    duration: timedelta
    acks: tuple[Ack, ...]
    update_every: timedelta | None
    events: tuple[Event, ...]
    findings: tuple[str, ...]
    postmortem_due: timedelta | None


# -- who fills a role ------------------------------------------------------------------------


def people_sources(role: Role) -> list[str]:
    """Where a role's people come from, as the playbook writes them: its Slack targets.

    The one place that describes a role's people: the roles section, the Slack DM pages and
    the findings all read it. A new source (an on-call schedule: "on call in PagerDuty
    schedule PABC123") is added to this list and shows everywhere.
    """
    sources = list(role.slack)
    if role.oncall is not None:
        sources.append(describe_source(role.oncall))
    return sources


def who_fills(name: str, role: Role) -> str:
    """A role's people in one phrase, for the roles section."""
    sources = people_sources(role)
    if sources:
        return ", ".join(sources)
    return "the declarer" if name == COMMANDER_ROLE else "nobody named"


def role_line(name: str, role: Role) -> str:
    """Who fills a role, what pages it, and its ack_timeout, for the roles section."""
    parts = [who_fills(name, role)]
    pagers = [_PAGER_NAMES[kind] for kind in role_pagers(role)]
    if pagers:
        parts.append("pages through " + ", ".join(pagers))
    if role.required:
        parts.append("required")
    if role.ack_timeout is not None:
        parts.append(f"ack_timeout {span(role.ack_timeout)}")
    return "; ".join(parts)


# -- choosing the playbook -------------------------------------------------------------------


def choose_playbook(
    playbooks: Sequence[Playbook], *, service: str, severity: Severity
) -> tuple[Playbook | None, str]:
    """The playbook the live bot picks for service and severity, and why, in one phrase."""
    chosen = select_playbook(playbooks, service=service, severity=severity)
    wanted = service.strip().casefold()
    listing = sorted(
        (p for p in playbooks if any(s.casefold() == wanted for s in p.match.services)),
        key=lambda p: p.name,
    )
    covering = [p for p in listing if p.match.covers(service=service, severity=severity)]
    if chosen is not None and chosen in covering:
        why = (
            f"service {service} is in its match.services and {severity.value} meets its "
            f"min_severity {chosen.match.min_severity.value}"
        )
        others = [p.name for p in covering if p is not chosen]
        if others:
            why += (
                f"; it wins over {', '.join(others)} (the stricter min_severity first, "
                "then the name)"
            )
        return chosen, why
    if listing:
        below = ", ".join(f"{p.name} from {p.match.min_severity.value}" for p in listing)
        reason = (
            f"the playbooks listing service {service} apply only at a higher severity ({below})"
        )
    else:
        reason = f"no playbook lists service {service}"
    if chosen is not None:
        return chosen, f"the default playbook: {reason}"
    return None, f"{reason} and there is no default playbook: nothing is paged, no reminders"


# -- the run ---------------------------------------------------------------------------------


@dataclass
class _Run:
    playbook: Playbook
    severity: Severity
    duration: timedelta
    events: list[Event] = field(default_factory=list)
    timers: dict[str, tuple[Timer, int]] = field(default_factory=dict)  # key -> timer, order
    order: int = 0
    paged_roles: dict[str, timedelta] = field(default_factory=dict)  # role -> first paged at
    page_times: list[timedelta] = field(default_factory=list)
    highest_tier: int = 0
    acknowledged: tuple[str, timedelta] | None = None
    resolved: bool = False
    postmortem_due: timedelta | None = None

    # -- timers (keyed like the live bot's: a later one replaces the earlier) ----------------

    @staticmethod
    def key(timer: Timer) -> str:
        return f"{timer.kind.value}:{timer.tier}" if timer.kind is Due.ESCALATE else timer.kind

    def set(self, timer: Timer) -> None:
        self.order += 1
        self.timers[self.key(timer)] = (timer, self.order)

    def cancel(self, kinds: Iterable[Due]) -> list[Timer]:
        stopping = set(kinds)
        gone = [t for t, _ in self.timers.values() if t.kind in stopping]
        self.timers = {k: v for k, v in self.timers.items() if v[0].kind not in stopping}
        return sorted(gone, key=lambda t: (t.at, t.tier))

    def next_timer(self) -> Timer | None:
        if not self.timers:
            return None
        # At the same moment: escalations (by tier), then the status reminder, then the nudge.
        order = list(Due)
        timer, _ = min(
            self.timers.values(),
            key=lambda pair: (pair[0].at, order.index(pair[0].kind), pair[0].tier, pair[1]),
        )
        return timer

    # -- events ------------------------------------------------------------------------------

    def say(self, at: datetime, kind: EventKind, text: str, **details: Any) -> None:
        self.events.append(Event(at - DECLARED_AT, kind, text, **details))

    # -- paging ------------------------------------------------------------------------------

    def page_role(
        self, name: str, *, tier: int, at: datetime, prefix: str, at_declaration: bool
    ) -> None:
        """Page a role as tier `tier` (0: a role no tier names, at declaration)."""
        role = self.playbook.roles[name]
        sent = False
        for kind in role_pagers(role):
            targets = _pager_targets(self.playbook, role, kind)
            how = f"{_PAGER_NAMES[kind]} ({'; '.join(targets)})"
            self.say(
                at,
                EventKind.PAGE,
                f"{prefix}page {name} by {how}",
                role=name,
                via=kind,
                tier=tier,
                targets=tuple(targets),
            )
            sent = True
        people = _dm_targets(name, role, at_declaration=at_declaration)
        if people is not None:
            written, shown = people
            self.say(
                at,
                EventKind.PAGE,
                f"{prefix}page {name} by Slack DM ({shown})",
                role=name,
                via=PagerKind.SLACK,
                tier=tier,
                targets=written,
            )
            sent = True
        if not sent:
            if at_declaration and tier == 0:
                return  # nobody to page and no tier names it: the roles section says so
            if name == COMMANDER_ROLE and at_declaration:
                self.say(
                    at,
                    EventKind.NOBODY_TO_PAGE,
                    f"{prefix}nobody to page for commander: the declarer holds the role",
                    role=name,
                    tier=tier,
                )
                return
            self.say(
                at,
                EventKind.NOBODY_TO_PAGE,
                f"{prefix}nobody to page for {name}: the playbook names nobody and no pager "
                "(only someone given the role by hand would be paged)",
                role=name,
                tier=tier,
            )
            return
        self.paged(name, at=at, tier=tier)

    def paged(self, name: str | None, *, at: datetime, tier: int) -> None:
        offset = at - DECLARED_AT
        if name is not None:
            self.paged_roles.setdefault(name, offset)
        if offset not in self.page_times:
            self.page_times.append(offset)
        self.highest_tier = max(self.highest_tier, tier)
        forward = next_tier_brought_forward(
            self.playbook, role_name=name, tier=tier, paged_at=at, declared_at=DECLARED_AT
        )
        if forward is None:
            return
        pending = self.timers.get(self.key(forward))
        self.set(forward)
        if pending is not None and forward.at < pending[0].at:
            role = self.playbook.roles[name or ""]
            assert role.ack_timeout is not None
            self.say(
                at,
                EventKind.BROUGHT_FORWARD,
                f"{name}'s ack_timeout ({span(role.ack_timeout)}) brings tier {forward.tier} "
                f"forward from {offset_text(pending[0].at - DECLARED_AT)} to "
                f"{offset_text(forward.at - DECLARED_AT)}",
                role=name,
                tier=forward.tier,
            )

    def page_tier(self, tier: int, *, at: datetime, at_declaration: bool) -> None:
        spec = self.playbook.tiers[tier - 1]
        prefix = f"tier {tier} at declaration: " if at_declaration else f"escalate tier {tier}: "
        for name in spec.page:
            self.page_role(name, tier=tier, at=at, prefix=prefix, at_declaration=at_declaration)
        if spec.opsgenie is not None:
            targets = _opsgenie_targets(self.playbook, spec.opsgenie)
            self.say(
                at,
                EventKind.PAGE,
                f"{prefix}page the tier's Opsgenie responders ({'; '.join(targets)})",
                via=PagerKind.OPSGENIE,
                tier=tier,
                targets=tuple(targets),
            )
            self.paged(None, at=at, tier=tier)

    # -- what happens ------------------------------------------------------------------------

    def declare(self) -> None:
        at = DECLARED_AT
        self.say(at, EventKind.DECLARED, f"declared ({self.severity.value})")
        plan = plan_declaration(self.playbook, severity=self.severity, declared_at=at)
        # The plan's timers are stored before any page goes out, as the live bot's are (they
        # are committed with the declaration): a page's ack_timeout then moves them.
        for timer in plan.timers:
            self.set(timer)
        for name, tier in plan.paged_now.items():
            if tier == 0:
                self.page_role(name, tier=0, at=at, prefix="", at_declaration=True)
        for tier in plan.tiers_now:
            self.page_tier(tier, at=at, at_declaration=True)
        if plan.checklist:
            self.say(at, EventKind.CHECKLIST, f"post the checklist ({_items(self.playbook)})")

    def fire(self, timer: Timer) -> None:
        del self.timers[self.key(timer)]
        at = timer.at
        if timer.kind is Due.ESCALATE:
            if may_escalate(
                tier=timer.tier,
                tier_count=len(self.playbook.tiers),
                resolved=self.resolved,
                acknowledged=self.acknowledged is not None,
                highest_tier_paged=self.highest_tier,
            ):
                self.page_tier(timer.tier, at=at, at_declaration=False)
        elif timer.kind is Due.STATUS_REMINDER:
            every = self.playbook.reminder_interval(self.severity)
            if self.resolved or every is None:
                return
            self.say(
                at,
                EventKind.STATUS_REMINDER,
                f"status update reminder ({self.severity.value}: every {span(every)})",
            )
            again = status_reminder_at(self.playbook, severity=self.severity, now=at)
            if again is not None:
                self.set(Timer(Due.STATUS_REMINDER, again))
        elif timer.kind is Due.CHECKLIST_NUDGE:
            if not self.resolved and self.playbook.checklist:
                self.say(
                    at,
                    EventKind.CHECKLIST_NUDGE,
                    f"checklist nudge: post the checklist again ({_items(self.playbook)})",
                )

    def acknowledge(self, ack: Ack) -> None:
        at = DECLARED_AT + ack.after
        flag = f"--ack {ack.role}@{span(ack.after)}"
        if self.acknowledged is not None:
            by, when = self.acknowledged
            self.say(
                at,
                EventKind.ACK_IGNORED,
                f"{ack.role} acknowledges ({flag}): already acknowledged by {by} at "
                f"{offset_text(when)}; nothing changes",
                role=ack.role,
            )
            return
        if ack.role not in self.paged_roles:
            self.say(
                at,
                EventKind.ACK_IGNORED,
                f"{ack.role} cannot acknowledge ({flag}): {ack.role} has not been paged by "
                "then, so there is no page to acknowledge; nothing changes",
                role=ack.role,
            )
            return
        self.acknowledged = (ack.role, ack.after)
        stopped = [t for t in self.cancel(STOPPED_BY_ACK) if t.kind is Due.ESCALATE]
        if stopped:
            tiers = ", ".join(
                f"tier {t.tier} at {offset_text(t.at - DECLARED_AT)}" for t in stopped
            )
            what = f"escalation stops: {tiers} will not page"
        else:
            what = "escalation stops (no tier was still to come)"
        self.say(
            at,
            EventKind.ACK,
            f"{ack.role} acknowledges ({flag}): {what}; reminders and the checklist nudge go on",
            role=ack.role,
        )

    def update(self, at: datetime, every: timedelta) -> None:
        again = status_reminder_at(self.playbook, severity=self.severity, now=at)
        if again is not None:
            self.set(Timer(Due.STATUS_REMINDER, again))
            after = f"the next reminder moves to {offset_text(again - DECLARED_AT)}"
        else:
            after = f"no reminders at {self.severity.value}"
        self.say(
            at,
            EventKind.STATUS_UPDATE,
            f"status update posted (--update-every {span(every)}): {after}",
        )

    def resolve(self) -> None:
        at = DECLARED_AT + self.duration
        self.resolved = True
        self.cancel(STOPPED_BY_RESOLUTION)
        due = postmortem_due_at(self.playbook, resolved_at=at)
        if due is not None:
            self.postmortem_due = due - DECLARED_AT
            assert self.playbook.postmortem.due_in is not None
            postmortem = (
                f"the postmortem is due {span(self.playbook.postmortem.due_in)} later, at "
                f"{offset_text(self.postmortem_due)}"
            )
        else:
            postmortem = "no postmortem due date (the playbook sets no postmortem.due_in)"
        self.say(
            at,
            EventKind.RESOLVED,
            f"resolved at the end of the run (--for {span(self.duration)}): escalation, status "
            f"reminders and the checklist nudge stop; {postmortem}",
        )


def simulate(
    playbook: Playbook,
    *,
    severity: Severity,
    duration: timedelta,
    acks: Sequence[Ack] = (),
    update_every: timedelta | None = None,
    selection: str = "",
) -> Simulation:
    """Play the playbook from a declaration at +00:00 until `duration`, then resolve."""
    run = _Run(playbook, severity, duration)
    run.declare()
    end = DECLARED_AT + duration
    # People's actions, in time order; at the same moment acks before updates.
    inputs: list[tuple[datetime, int, Ack | None]] = [
        (DECLARED_AT + ack.after, 0, ack) for ack in acks if ack.after <= duration
    ]
    if update_every is not None:
        at = DECLARED_AT + update_every
        while at < end:  # an update at the very end is the resolution itself
            inputs.append((at, 1, None))
            at += update_every
    inputs.sort(key=lambda item: (item[0], item[1]))
    position = 0
    while True:
        timer = run.next_timer()
        person = inputs[position] if position < len(inputs) else None
        if timer is not None and timer.at <= end and (person is None or timer.at <= person[0]):
            run.fire(timer)  # at the same moment, timers first
        elif person is not None:
            position += 1
            at, _, ack = person
            if ack is not None:
                run.acknowledge(ack)
            else:
                assert update_every is not None
                run.update(at, update_every)
        else:
            break
    run.resolve()
    return Simulation(
        playbook=playbook,
        selection=selection,
        severity=severity,
        duration=duration,
        acks=tuple(acks),
        update_every=update_every,
        events=tuple(run.events),
        findings=tuple(_findings(run, acks)),
        postmortem_due=run.postmortem_due,
    )


# -- findings --------------------------------------------------------------------------------


def _findings(run: _Run, acks: Sequence[Ack]) -> list[str]:
    playbook, found = run.playbook, []
    for name, role in playbook.roles.items():
        if role.required and name != COMMANDER_ROLE and not people_sources(role):
            found.append(
                f"required role {name}: nobody fills it (the playbook names no one for it); "
                f"it stays empty until someone runs `/incident role {name} @user`"
            )
    found += _never_paged(run)
    found += _quiet_sev1(run)
    found += _slow_reminders(playbook)
    for index, tier in enumerate(playbook.tiers, start=1):
        if tier.after > run.duration:
            found.append(
                f"tier {index} (after {span(tier.after)}) comes after the incident is over "
                f"(--for {span(run.duration)}): it never pages in this run"
            )
    for ack in acks:
        if ack.after > run.duration:
            found.append(
                f"--ack {ack.role}@{span(ack.after)} comes after the end of the run "
                f"(--for {span(run.duration)}): ignored"
            )
    return found


def _never_paged(run: _Run) -> list[str]:
    playbook, found = run.playbook, []
    tiered = tiered_roles(playbook)
    nobody = {e.role for e in run.events if e.kind is EventKind.NOBODY_TO_PAGE}
    for name, role in playbook.roles.items():
        if name in run.paged_roles:
            continue
        if name not in tiered:
            if name == COMMANDER_ROLE and not people_sources(role) and not role.has_pager:
                continue  # the declarer is the commander: there is nobody to page
            found.append(
                f"{name} is never paged: no tier names it and the playbook names nobody and "
                "no pager for it"
            )
        elif name in nobody:
            found.append(
                f"{name} is never paged: its tier fires but the playbook names nobody and no "
                "pager for it"
            )
        elif run.acknowledged is None:
            tiers = [
                f"tier {i} at {offset_text(t.after)}"
                for i, t in enumerate(playbook.tiers, start=1)
                if name in t.page
            ]
            found.append(
                f"{name} is never paged within {span(run.duration)}: its "
                f"{'tiers' if len(tiers) > 1 else 'tier'} ({', '.join(tiers)}) "
                "come after the end of the run"
            )
    return found


def _quiet_sev1(run: _Run) -> list[str]:
    """Stretches longer than 15 minutes with nobody acknowledging and nobody new paged.

    Escalation does not depend on the severity, so this holds for a sev1 whatever the run's.
    """
    end = run.duration
    if run.acknowledged is not None:
        end = min(end, run.acknowledged[1])
    times = sorted(t for t in run.page_times if t <= end)
    found = []
    start = timedelta(0)
    for moment in [*times, end]:
        if moment - start > SEV1_QUIET_LIMIT:
            if not times:
                what = f"nobody is paged at all in {span(moment)}"
            elif start == timedelta(0) and times[0] > timedelta(0):
                what = f"nobody is paged for the first {span(moment - start)}"
            elif moment == end and moment not in times:
                what = (
                    f"after the last page at {offset_text(start)}, nobody acknowledges and no "
                    f"further tier pages anyone for {span(moment - start)}"
                )
            else:
                what = (
                    f"nobody acknowledges and nobody new is paged from {offset_text(start)} to "
                    f"{offset_text(moment)} ({span(moment - start)})"
                )
            found.append(
                f"{what}: on a sev1 that is more than {span(SEV1_QUIET_LIMIT)} without an "
                "acknowledgement or a further tier (escalation is the same at every severity)"
            )
        start = moment
    return found


def _slow_reminders(playbook: Playbook) -> list[str]:
    found = []
    every = playbook.reminders.status_update_every
    for severity in Severity:
        interval = every.get(severity)
        warranted = WARRANTED_REMINDERS[severity]
        covered = playbook.is_default or list(Severity).index(severity) <= list(Severity).index(
            playbook.match.min_severity
        )
        if interval is None:
            if covered and severity in (Severity.SEV1, Severity.SEV2):
                found.append(
                    f"no status-update reminders at {severity.value}: nobody is reminded to "
                    f"update stakeholders (at most every {span(warranted)} is usual)"
                )
            continue
        if interval > warranted:
            found.append(
                f"status-update reminders every {span(interval)} at {severity.value}: slower "
                f"than a {severity.value} warrants (at most every {span(warranted)})"
            )
        for milder in list(Severity)[list(Severity).index(severity) + 1 :]:
            other = every.get(milder)
            if other is not None and other < interval:
                found.append(
                    f"status-update reminders at {severity.value} (every {span(interval)}) come "
                    f"less often than at {milder.value} (every {span(other)})"
                )
                break
    return found


# -- what targets look like ------------------------------------------------------------------


def _pager_targets(playbook: Playbook, role: Role, kind: PagerKind) -> list[str]:
    if kind is PagerKind.PAGERDUTY and role.pagerduty is not None:
        return [f"routing key from {role.pagerduty.routing_key_env}"]
    if kind is PagerKind.OPSGENIE and role.opsgenie is not None:
        return _opsgenie_targets(playbook, role.opsgenie)
    if kind is PagerKind.WEBHOOK and role.webhook is not None:
        signed = f", signed with {role.webhook.secret_env}" if role.webhook.secret_env else ""
        return [f"URL from {role.webhook.url_env}{signed}"]
    return []


def _opsgenie_targets(playbook: Playbook, target: OpsgenieTarget) -> list[str]:
    responders = [f"{r.type} {r.id or r.name or r.username}" for r in target.responders] or [
        "no responders named"
    ]
    priority = [f"priority {target.priority}"] if target.priority else []
    return [", ".join(responders), *priority, f"API key from {playbook.opsgenie_key_env(target)}"]


def _dm_targets(
    name: str, role: Role, *, at_declaration: bool
) -> tuple[tuple[str, ...], str] | None:
    """Who a role's Slack DM page goes to, as written; None when nobody.

    At declaration everyone the role's targets name is paged; a later tier pages whoever
    holds the role, and the commander role is held by one person: the first one found (or,
    with nobody named, the declarer).
    """
    sources = people_sources(role)
    if sources:
        if name == COMMANDER_ROLE and not at_declaration:
            return (sources[0],), f"the commander: the first found of {', '.join(sources)}"
        return tuple(sources), ", ".join(sources)
    if name == COMMANDER_ROLE and not at_declaration:
        return ("declarer",), "the commander: the declarer, unless handed over"
    return None


def _items(playbook: Playbook) -> str:
    count = len(playbook.checklist)
    return "1 item" if count == 1 else f"{count} items"


# -- showing it ------------------------------------------------------------------------------


def offset_text(delta: timedelta) -> str:
    """`+MM:SS` under an hour, `+H:MM:SS` from an hour on."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"+{hours}:{minutes:02d}:{secs:02d}"
    return f"+{minutes:02d}:{secs:02d}"


def _run_line(sim: Simulation) -> str:
    acks = ", ".join(f"{a.role}@{span(a.after)}" for a in sim.acks) or "none"
    updates = f"every {span(sim.update_every)}" if sim.update_every else "none"
    return (
        f"run: {sim.severity.value} for {span(sim.duration)}; acknowledgements: {acks}; "
        f"status updates: {updates}"
    )


def render_text(sim: Simulation) -> str:
    """The run as lines a reviewer reads and diffs."""
    lines = [f"playbook {sim.playbook.name}: {sim.selection}", _run_line(sim), "roles:"]
    lines += [f"  {name}: {role_line(name, role)}" for name, role in sim.playbook.roles.items()]
    if not sim.playbook.roles:
        lines.append("  none")
    lines.append("")
    lines += [f"{offset_text(e.at)}  {e.text}" for e in sim.events]
    lines.append("")
    if sim.findings:
        lines.append("findings:")
        lines += [f"  - {finding}" for finding in sim.findings]
    else:
        lines.append("findings: none")
    return "\n".join(lines) + "\n"


def render_json(sim: Simulation) -> str:
    """The run as JSON, for tools."""
    document = {
        "playbook": sim.playbook.name,
        "selection": sim.selection,
        "severity": sim.severity.value,
        "for": span(sim.duration),
        "acks": [{"role": a.role, "after": span(a.after)} for a in sim.acks],
        "update_every": span(sim.update_every) if sim.update_every else None,
        "roles": [
            {
                "role": name,
                "people": who_fills(name, role),
                "pagers": [kind.value for kind in role_pagers(role)],
                "required": role.required,
                "ack_timeout": span(role.ack_timeout) if role.ack_timeout else None,
            }
            for name, role in sim.playbook.roles.items()
        ],
        "events": [
            {
                "at": offset_text(e.at),
                "seconds": int(e.at.total_seconds()),
                "kind": e.kind.value,
                "role": e.role,
                "via": e.via.value if e.via else None,
                "tier": e.tier,
                "targets": list(e.targets),
                "text": e.text,
            }
            for e in sim.events
        ],
        "resolved": {
            "at": offset_text(sim.duration),
            "postmortem_due": offset_text(sim.postmortem_due) if sim.postmortem_due else None,
        },
        "findings": list(sim.findings),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_no_playbook(selection: str, *, as_json: bool) -> str:
    """What a run says when no playbook applies (no match and no default)."""
    if as_json:
        return json.dumps({"playbook": None, "selection": selection}, indent=2) + "\n"
    return f"no playbook: {selection}\n"
