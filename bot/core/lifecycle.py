"""The incident state machine as data: a transitions table and one function that applies a change.

`apply` never talks to Slack or a database: it checks a change against the rules, then returns
the incident's new state and the timeline events the change produced. Callers record both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from bot.core.clock import format_time
from bot.core.enums import EntryKind, Severity, Status
from bot.errors import UserError

OPEN_STATUSES: frozenset[Status] = frozenset(
    {Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING}
)

# Which status may follow which. Open statuses move freely among each other (forward and back)
# and any of them may resolve; leaving RESOLVED is a reopen. Staying put is never a transition.
TRANSITIONS: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        Status.INVESTIGATING: frozenset({Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED}),
        Status.IDENTIFIED: frozenset({Status.INVESTIGATING, Status.MONITORING, Status.RESOLVED}),
        Status.MONITORING: frozenset({Status.INVESTIGATING, Status.IDENTIFIED, Status.RESOLVED}),
        Status.RESOLVED: frozenset(OPEN_STATUSES),
    }
)

COMMANDER_ROLE = "commander"
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class IncidentState:
    """What the rules need to know about an incident."""

    status: Status
    severity: Severity
    declared_at: datetime
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    commander: str | None = None

    @property
    def is_open(self) -> bool:
        """Whether the incident is not resolved."""
        return self.status is not Status.RESOLVED

    @property
    def began_at(self) -> datetime:
        """When impact began: the start if someone set it, else the declaration."""
        return self.started_at if self.started_at is not None else self.declared_at


@dataclass(frozen=True)
class TimelineEvent:
    """A timeline entry a change produced, at the time it happened."""

    kind: EntryKind
    occurred_at: datetime
    text: str
    author: str | None


@dataclass(frozen=True)
class ChangeStatus:
    """Move to another status; out of RESOLVED this is a reopen, into it a resolution."""

    to: Status
    at: datetime
    actor: str
    text: str | None = None


@dataclass(frozen=True)
class ChangeSeverity:
    """Raise or lower the severity of an open incident."""

    to: Severity
    at: datetime
    actor: str


@dataclass(frozen=True)
class SetStarted:
    """Say when impact began, at or before the declaration."""

    at: datetime
    actor: str


@dataclass(frozen=True)
class Resolve:
    """Resolve the incident at a given time (callers pass their clock's now by default)."""

    at: datetime
    actor: str
    text: str | None = None


@dataclass(frozen=True)
class AssignRole:
    """Give a playbook role to a person; the commander role is part of the state."""

    role: str
    user_id: str
    at: datetime
    actor: str


Change = ChangeStatus | ChangeSeverity | SetStarted | Resolve | AssignRole


class Action(StrEnum):
    """What a change amounts to, for deciding who may make it."""

    STATUS = "status"
    SEVERITY = "severity"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    STARTED = "started"
    ROLE = "role"
    HANDOVER = "handover"  # giving the commander role away


# Actions only the commander or an incident admin may take.
PRIVILEGED_ACTIONS: frozenset[Action] = frozenset(
    {Action.SEVERITY, Action.RESOLVE, Action.REOPEN, Action.HANDOVER}
)

_ACTION_PHRASES: Mapping[Action, str] = MappingProxyType(
    {
        Action.STATUS: "change the status of",
        Action.SEVERITY: "change the severity of",
        Action.RESOLVE: "resolve",
        Action.REOPEN: "reopen",
        Action.STARTED: "set when impact started for",
        Action.ROLE: "assign roles in",
        Action.HANDOVER: "hand over the command of",
    }
)


def status_label(status: Status) -> str:
    """Show a status as people read it: `Investigating`."""
    return status.value.capitalize()


def severity_label(severity: Severity) -> str:
    """Show a severity as people read it: `SEV1`."""
    return severity.value.upper()


def action_of(change: Change, state: IncidentState) -> Action:
    """Classify a change against the current state."""
    match change:
        case Resolve():
            return Action.RESOLVE
        case ChangeStatus(to=Status.RESOLVED):
            return Action.RESOLVE
        case ChangeStatus() if state.status is Status.RESOLVED:
            return Action.REOPEN
        case ChangeStatus():
            return Action.STATUS
        case ChangeSeverity():
            return Action.SEVERITY
        case SetStarted():
            return Action.STARTED
        case AssignRole() if change.role.lower() == COMMANDER_ROLE:
            return Action.HANDOVER
        case AssignRole():
            return Action.ROLE


def needs_privilege(change: Change, state: IncidentState) -> bool:
    """Whether only the commander or an incident admin may make this change."""
    return action_of(change, state) in PRIVILEGED_ACTIONS


def may_apply(change: Change, state: IncidentState, *, actor_is_admin: bool) -> bool:
    """Whether the change's actor may make it; with no commander yet, anyone may."""
    if not needs_privilege(change, state) or actor_is_admin or state.commander is None:
        return True
    return change.actor == state.commander


def privilege_error(change: Change, state: IncidentState, *, ref: str) -> UserError:
    """The refusal shown to someone who may not make a privileged change."""
    phrase = _ACTION_PHRASES[action_of(change, state)]
    holder = f"the commander (<@{state.commander}>)" if state.commander else "the commander"
    return UserError(f"Only {holder} or an incident admin can {phrase} {ref}.")


def apply(
    state: IncidentState, change: Change, *, ref: str, tz: ZoneInfo = _UTC
) -> tuple[IncidentState, list[TimelineEvent]]:
    """Apply one change; return the new state and its timeline events, or raise UserError."""
    match change:
        case Resolve():
            return _resolve(
                state, at=change.at, actor=change.actor, text=change.text, ref=ref, tz=tz
            )
        case ChangeStatus():
            return _change_status(state, change, ref=ref, tz=tz)
        case ChangeSeverity():
            return _change_severity(state, change, ref=ref)
        case SetStarted():
            return _set_started(state, change, ref=ref, tz=tz)
        case AssignRole():
            return _assign_role(state, change, ref=ref)


def _with_text(sentence: str, text: str | None) -> str:
    return f"{sentence}: {text}" if text else sentence


def _refuse_before_start(state: IncidentState, at: datetime, *, ref: str, tz: ZoneInfo) -> None:
    if at < state.began_at:
        began = format_time(state.began_at, tz, with_date=True)
        raise UserError(
            f"{format_time(at, tz, with_date=True)} is before {ref} began ({began}): "
            "give a time after that."
        )


def _check_transition(state: IncidentState, to: Status, *, ref: str) -> None:
    if to is state.status:
        raise UserError(f"{ref} is already {to.value}.")
    if to not in TRANSITIONS[state.status]:
        raise UserError(
            f"{ref} cannot go from {state.status.value} to {to.value}: "
            f"it can move to {', '.join(sorted(TRANSITIONS[state.status]))}."
        )


def _resolve(
    state: IncidentState,
    *,
    at: datetime,
    actor: str,
    text: str | None,
    ref: str,
    tz: ZoneInfo,
) -> tuple[IncidentState, list[TimelineEvent]]:
    _check_transition(state, Status.RESOLVED, ref=ref)
    _refuse_before_start(state, at, ref=ref, tz=tz)
    new = replace(state, status=Status.RESOLVED, resolved_at=at)
    return new, [TimelineEvent(EntryKind.RESOLVED, at, _with_text("Resolved", text), actor)]


def _change_status(
    state: IncidentState, change: ChangeStatus, *, ref: str, tz: ZoneInfo
) -> tuple[IncidentState, list[TimelineEvent]]:
    if change.to is Status.RESOLVED:
        return _resolve(state, at=change.at, actor=change.actor, text=change.text, ref=ref, tz=tz)
    _check_transition(state, change.to, ref=ref)
    _refuse_before_start(state, change.at, ref=ref, tz=tz)
    if state.status is Status.RESOLVED:
        if state.resolved_at is not None and change.at < state.resolved_at:
            resolved = format_time(state.resolved_at, tz, with_date=True)
            raise UserError(
                f"{ref} was resolved at {resolved}: a reopen must come after that, "
                "so leave out the time or give a later one."
            )
        new = replace(state, status=change.to, resolved_at=None)
        sentence = f"Reopened ({status_label(change.to)})"
        event = TimelineEvent(
            EntryKind.REOPENED, change.at, _with_text(sentence, change.text), change.actor
        )
        return new, [event]
    sentence = f"Status changed from {status_label(state.status)} to {status_label(change.to)}"
    event = TimelineEvent(
        EntryKind.STATUS, change.at, _with_text(sentence, change.text), change.actor
    )
    return replace(state, status=change.to), [event]


def _change_severity(
    state: IncidentState, change: ChangeSeverity, *, ref: str
) -> tuple[IncidentState, list[TimelineEvent]]:
    if not state.is_open:
        raise UserError(
            f"{ref} is resolved; reopen it first with `/incident status investigating`."
        )
    if change.to is state.severity:
        raise UserError(f"{ref} is already {severity_label(change.to)}.")
    sentence = (
        f"Severity changed from {severity_label(state.severity)} to {severity_label(change.to)}"
    )
    event = TimelineEvent(EntryKind.SEVERITY, change.at, sentence, change.actor)
    return replace(state, severity=change.to), [event]


def _set_started(
    state: IncidentState, change: SetStarted, *, ref: str, tz: ZoneInfo
) -> tuple[IncidentState, list[TimelineEvent]]:
    shown = format_time(change.at, tz, with_date=True)
    if change.at > state.declared_at:
        declared = format_time(state.declared_at, tz, with_date=True)
        raise UserError(
            f"Impact cannot start at {shown}, after {ref} was declared ({declared}): "
            "give a time at or before the declaration."
        )
    if state.resolved_at is not None and change.at > state.resolved_at:
        resolved = format_time(state.resolved_at, tz, with_date=True)
        raise UserError(
            f"Impact cannot start at {shown}, after {ref} was resolved ({resolved}): "
            "give an earlier time."
        )
    if change.at == state.started_at:
        raise UserError(f"{ref} already has impact starting at {shown}.")
    event = TimelineEvent(EntryKind.STARTED, change.at, "Impact started", change.actor)
    return replace(state, started_at=change.at), [event]


def _assign_role(
    state: IncidentState, change: AssignRole, *, ref: str
) -> tuple[IncidentState, list[TimelineEvent]]:
    role = change.role.lower()
    if role == COMMANDER_ROLE and state.commander == change.user_id:
        raise UserError(f"<@{change.user_id}> is already the commander of {ref}.")
    new = replace(state, commander=change.user_id) if role == COMMANDER_ROLE else state
    event = TimelineEvent(
        EntryKind.ROLE, change.at, f"<@{change.user_id}> is now {role}", change.actor
    )
    return new, [event]


class _Timed(Protocol):
    @property
    def occurred_at(self) -> datetime: ...


_T = TypeVar("_T", bound=_Timed)


def order_timeline(entries: Iterable[_T]) -> list[_T]:
    """Sort by when things happened; entries at the same moment keep their recorded order."""
    # sorted() is stable, so ties keep the order they were given in (the order recorded).
    return sorted(entries, key=lambda entry: entry.occurred_at)
