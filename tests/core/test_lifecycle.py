"""The incident state machine: the transitions table, `apply`, permissions, timeline order."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.enums import EntryKind, Severity, Status
from bot.core.lifecycle import (
    OPEN_STATUSES,
    PRIVILEGED_ACTIONS,
    TRANSITIONS,
    Action,
    AssignRole,
    Change,
    ChangeSeverity,
    ChangeStatus,
    IncidentState,
    Resolve,
    SetStarted,
    TimelineEvent,
    action_of,
    apply,
    may_apply,
    needs_privilege,
    order_timeline,
    privilege_error,
    severity_label,
    status_label,
)
from bot.errors import UserError

LA = ZoneInfo("America/Los_Angeles")
DECLARED = datetime(2026, 11, 25, 18, 0, tzinfo=UTC)
LATER = DECLARED + timedelta(minutes=30)
REF = "INC-7"


def state(
    status: Status = Status.INVESTIGATING,
    severity: Severity = Severity.SEV3,
    **changes: object,
) -> IncidentState:
    base = IncidentState(status=status, severity=severity, declared_at=DECLARED)
    if status is Status.RESOLVED:
        base = replace(base, resolved_at=DECLARED + timedelta(hours=1))
    return replace(base, **changes)  # type: ignore[arg-type]


def refused(current: IncidentState, change: Change) -> str:
    with pytest.raises(UserError) as excinfo:
        apply(current, change, ref=REF)
    message = excinfo.value.message
    assert message and "\n" not in message
    return message


# --- the table --------------------------------------------------------------------------


def test_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(Status)
    for status, targets in TRANSITIONS.items():
        assert status not in targets


def test_table_shape() -> None:
    for status in OPEN_STATUSES:
        assert TRANSITIONS[status] == frozenset(Status) - {status}
    assert TRANSITIONS[Status.RESOLVED] == OPEN_STATUSES


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[Status.RESOLVED] = frozenset()  # type: ignore[index]


@pytest.mark.parametrize(("start", "to"), list(itertools.product(Status, Status)))
def test_every_status_pair_follows_the_table(start: Status, to: Status) -> None:
    current = state(start)
    change = ChangeStatus(to=to, at=DECLARED + timedelta(hours=2), actor="U1")
    if to in TRANSITIONS[start]:
        new, events = apply(current, change, ref=REF)
        assert new.status is to
        assert len(events) == 1
        assert events[0].occurred_at == change.at
        assert events[0].author == "U1"
    else:
        assert refused(current, change) == f"INC-7 is already {to.value}."


# --- status changes ---------------------------------------------------------------------


def test_status_change_event_text() -> None:
    new, events = apply(state(), ChangeStatus(to=Status.IDENTIFIED, at=LATER, actor="U1"), ref=REF)
    assert new == replace(state(), status=Status.IDENTIFIED)
    assert events == [
        TimelineEvent(
            EntryKind.STATUS, LATER, "Status changed from Investigating to Identified", "U1"
        )
    ]


def test_status_change_with_text() -> None:
    _, events = apply(
        state(Status.IDENTIFIED),
        ChangeStatus(to=Status.MONITORING, at=LATER, actor="U1", text="deployed the fix"),
        ref=REF,
    )
    assert events[0].text == "Status changed from Identified to Monitoring: deployed the fix"


def test_status_can_go_back() -> None:
    new, events = apply(
        state(Status.MONITORING),
        ChangeStatus(to=Status.INVESTIGATING, at=LATER, actor="U1"),
        ref=REF,
    )
    assert new.status is Status.INVESTIGATING
    assert events[0].text == "Status changed from Monitoring to Investigating"


def test_already_in_status_message() -> None:
    message = refused(
        state(Status.IDENTIFIED), ChangeStatus(to=Status.IDENTIFIED, at=LATER, actor="U1")
    )
    assert message == "INC-7 is already identified."


def test_backdated_status_before_the_incident_began_is_refused() -> None:
    message = refused(
        state(), ChangeStatus(to=Status.IDENTIFIED, at=DECLARED - timedelta(minutes=1), actor="U1")
    )
    assert "before INC-7 began" in message


def test_backdated_status_after_impact_start_is_fine() -> None:
    current = state(started_at=DECLARED - timedelta(hours=1))
    at = DECLARED - timedelta(minutes=10)
    new, events = apply(current, ChangeStatus(to=Status.IDENTIFIED, at=at, actor="U1"), ref=REF)
    assert new.status is Status.IDENTIFIED
    assert events[0].occurred_at == at


# --- resolve and reopen -----------------------------------------------------------------


def test_resolve() -> None:
    new, events = apply(state(), Resolve(at=LATER, actor="U1"), ref=REF)
    assert new.status is Status.RESOLVED
    assert new.resolved_at == LATER
    assert events == [TimelineEvent(EntryKind.RESOLVED, LATER, "Resolved", "U1")]


def test_resolve_with_text() -> None:
    _, events = apply(state(), Resolve(at=LATER, actor="U1", text="rolled back"), ref=REF)
    assert events[0].text == "Resolved: rolled back"


def test_status_resolved_is_the_same_as_resolve() -> None:
    via_status = apply(
        state(Status.MONITORING),
        ChangeStatus(to=Status.RESOLVED, at=LATER, actor="U1", text="ok"),
        ref=REF,
    )
    via_resolve = apply(state(Status.MONITORING), Resolve(at=LATER, actor="U1", text="ok"), ref=REF)
    assert via_status == via_resolve


def test_resolve_twice_is_refused() -> None:
    assert refused(state(Status.RESOLVED), Resolve(at=LATER, actor="U1")) == (
        "INC-7 is already resolved."
    )


def test_resolve_at_the_declaration_is_fine() -> None:
    new, _ = apply(state(), Resolve(at=DECLARED, actor="U1"), ref=REF)
    assert new.resolved_at == DECLARED


def test_resolve_before_declaration_is_refused() -> None:
    message = refused(state(), Resolve(at=DECLARED - timedelta(minutes=1), actor="U1"))
    assert message.startswith("2026-11-25 5:59 PM UTC is before INC-7 began")


def test_resolve_before_impact_start_is_refused_even_if_started_earlier() -> None:
    current = state(started_at=DECLARED - timedelta(hours=2))
    refused(current, Resolve(at=DECLARED - timedelta(hours=3), actor="U1"))
    # After the start but before the declaration: a retrospective declaration, allowed.
    new, _ = apply(current, Resolve(at=DECLARED - timedelta(hours=1), actor="U1"), ref=REF)
    assert new.resolved_at == DECLARED - timedelta(hours=1)


def test_error_times_are_shown_in_the_given_zone() -> None:
    with pytest.raises(UserError) as excinfo:
        apply(state(), Resolve(at=DECLARED - timedelta(minutes=1), actor="U1"), ref=REF, tz=LA)
    assert "2026-11-25 9:59 AM PST" in excinfo.value.message
    assert "2026-11-25 10:00 AM PST" in excinfo.value.message


@pytest.mark.parametrize("to", sorted(OPEN_STATUSES))
def test_reopen(to: Status) -> None:
    current = state(Status.RESOLVED)
    at = DECLARED + timedelta(hours=2)
    new, events = apply(current, ChangeStatus(to=to, at=at, actor="U2"), ref=REF)
    assert new.status is to
    assert new.resolved_at is None
    assert events == [TimelineEvent(EntryKind.REOPENED, at, f"Reopened ({status_label(to)})", "U2")]


def test_reopen_with_text() -> None:
    _, events = apply(
        state(Status.RESOLVED),
        ChangeStatus(
            to=Status.INVESTIGATING, at=LATER + timedelta(hours=1), actor="U2", text="back"
        ),
        ref=REF,
    )
    assert events[0].text == "Reopened (Investigating): back"


def test_reopen_before_the_resolution_is_refused() -> None:
    current = state(Status.RESOLVED)
    assert current.resolved_at is not None
    message = refused(
        current,
        ChangeStatus(
            to=Status.INVESTIGATING, at=current.resolved_at - timedelta(minutes=1), actor="U1"
        ),
    )
    assert "was resolved at" in message


def test_resolve_reopen_resolve_cycle() -> None:
    current = state()
    current, _ = apply(current, Resolve(at=LATER, actor="U1"), ref=REF)
    current, _ = apply(
        current, ChangeStatus(to=Status.IDENTIFIED, at=LATER + timedelta(1), actor="U1"), ref=REF
    )
    current, events = apply(current, Resolve(at=LATER + timedelta(2), actor="U1"), ref=REF)
    assert current.status is Status.RESOLVED
    assert current.resolved_at == LATER + timedelta(2)
    assert events[0].kind is EntryKind.RESOLVED


# --- severity ---------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "to"), list(itertools.product(Severity, Severity)))
def test_every_severity_pair_while_open(start: Severity, to: Severity) -> None:
    change = ChangeSeverity(to=to, at=LATER, actor="U1")
    if start is to:
        assert refused(state(severity=start), change) == f"INC-7 is already {to.value.upper()}."
        return
    new, events = apply(state(severity=start), change, ref=REF)
    assert new.severity is to
    assert events == [
        TimelineEvent(
            EntryKind.SEVERITY,
            LATER,
            f"Severity changed from {severity_label(start)} to {severity_label(to)}",
            "U1",
        )
    ]


@pytest.mark.parametrize("to", list(Severity))
def test_severity_change_refused_when_resolved(to: Severity) -> None:
    message = refused(state(Status.RESOLVED), ChangeSeverity(to=to, at=LATER, actor="U1"))
    assert message == "INC-7 is resolved; reopen it first with `/incident status investigating`."


def test_severity_text_example() -> None:
    _, events = apply(
        state(severity=Severity.SEV3),
        ChangeSeverity(to=Severity.SEV1, at=LATER, actor="U1"),
        ref=REF,
    )
    assert events[0].text == "Severity changed from SEV3 to SEV1"


# --- impact start -----------------------------------------------------------------------


def test_set_started() -> None:
    at = DECLARED - timedelta(minutes=20)
    new, events = apply(state(), SetStarted(at=at, actor="U1"), ref=REF)
    assert new.started_at == at
    assert new.began_at == at
    assert events == [TimelineEvent(EntryKind.STARTED, at, "Impact started", "U1")]


def test_set_started_at_the_declaration_is_fine() -> None:
    new, _ = apply(state(), SetStarted(at=DECLARED, actor="U1"), ref=REF)
    assert new.started_at == DECLARED


def test_set_started_after_declaration_is_refused() -> None:
    message = refused(state(), SetStarted(at=DECLARED + timedelta(minutes=1), actor="U1"))
    assert "after INC-7 was declared" in message


def test_set_started_after_resolution_is_refused() -> None:
    current = state(
        Status.RESOLVED,
        started_at=DECLARED - timedelta(hours=3),
        resolved_at=DECLARED - timedelta(hours=2),
    )
    message = refused(current, SetStarted(at=DECLARED - timedelta(hours=1), actor="U1"))
    assert "after INC-7 was resolved" in message


def test_set_started_again_to_the_same_time_is_refused() -> None:
    at = DECLARED - timedelta(minutes=20)
    current, _ = apply(state(), SetStarted(at=at, actor="U1"), ref=REF)
    assert "already" in refused(current, SetStarted(at=at, actor="U1"))


def test_set_started_allowed_after_resolution_for_the_postmortem() -> None:
    at = DECLARED - timedelta(minutes=5)
    new, _ = apply(state(Status.RESOLVED), SetStarted(at=at, actor="U1"), ref=REF)
    assert new.started_at == at
    assert new.status is Status.RESOLVED


# --- roles ------------------------------------------------------------------------------


def test_assign_commander_sets_the_state() -> None:
    new, events = apply(
        state(), AssignRole(role="Commander", user_id="U9", at=LATER, actor="U1"), ref=REF
    )
    assert new.commander == "U9"
    assert events == [TimelineEvent(EntryKind.ROLE, LATER, "<@U9> is now commander", "U1")]


def test_assign_other_role_leaves_the_commander() -> None:
    current = state(commander="U9")
    new, events = apply(
        current, AssignRole(role="scribe", user_id="U3", at=LATER, actor="U1"), ref=REF
    )
    assert new == current
    assert events[0].text == "<@U3> is now scribe"


def test_assign_commander_again_is_refused() -> None:
    message = refused(
        state(commander="U9"), AssignRole(role="commander", user_id="U9", at=LATER, actor="U1")
    )
    assert message == "<@U9> is already the commander of INC-7."


# --- permissions ------------------------------------------------------------------------

CASES: list[tuple[Change, IncidentState, Action]] = [
    (ChangeStatus(to=Status.IDENTIFIED, at=LATER, actor="U1"), state(), Action.STATUS),
    (ChangeStatus(to=Status.RESOLVED, at=LATER, actor="U1"), state(), Action.RESOLVE),
    (Resolve(at=LATER, actor="U1"), state(), Action.RESOLVE),
    (
        ChangeStatus(to=Status.INVESTIGATING, at=LATER, actor="U1"),
        state(Status.RESOLVED),
        Action.REOPEN,
    ),
    (ChangeSeverity(to=Severity.SEV1, at=LATER, actor="U1"), state(), Action.SEVERITY),
    (SetStarted(at=DECLARED, actor="U1"), state(), Action.STARTED),
    (AssignRole(role="scribe", user_id="U2", at=LATER, actor="U1"), state(), Action.ROLE),
    (AssignRole(role="commander", user_id="U2", at=LATER, actor="U1"), state(), Action.HANDOVER),
]


@pytest.mark.parametrize(("change", "current", "action"), CASES)
def test_action_and_privilege(change: Change, current: IncidentState, action: Action) -> None:
    assert action_of(change, current) is action
    assert needs_privilege(change, current) is (action in PRIVILEGED_ACTIONS)


def test_privileged_actions_are_severity_resolve_reopen_and_handover() -> None:
    assert PRIVILEGED_ACTIONS == {Action.SEVERITY, Action.RESOLVE, Action.REOPEN, Action.HANDOVER}


def test_only_the_commander_hands_over_the_command() -> None:
    current = state(commander="U1")
    grab = AssignRole(role="commander", user_id="U3", at=LATER, actor="U3")
    give = AssignRole(role="commander", user_id="U3", at=LATER, actor="U1")
    assert not may_apply(grab, current, actor_is_admin=False)
    assert may_apply(grab, current, actor_is_admin=True)
    assert may_apply(give, current, actor_is_admin=False)


def test_may_apply() -> None:
    sev = ChangeSeverity(to=Severity.SEV1, at=LATER, actor="U1")
    note_status = ChangeStatus(to=Status.IDENTIFIED, at=LATER, actor="U1")
    with_commander = state(commander="U9")
    assert may_apply(sev, state(), actor_is_admin=False)  # nobody to defer to yet
    assert not may_apply(sev, with_commander, actor_is_admin=False)
    assert may_apply(sev, with_commander, actor_is_admin=True)
    assert may_apply(replace(sev, actor="U9"), with_commander, actor_is_admin=False)
    assert may_apply(note_status, with_commander, actor_is_admin=False)


def test_privilege_error_message() -> None:
    sev = ChangeSeverity(to=Severity.SEV1, at=LATER, actor="U1")
    error = privilege_error(sev, state(commander="U9"), ref=REF)
    assert error.message == (
        "Only the commander (<@U9>) or an incident admin can change the severity of INC-7."
    )
    reopen = ChangeStatus(to=Status.INVESTIGATING, at=LATER, actor="U1")
    assert "can reopen INC-7." in privilege_error(reopen, state(Status.RESOLVED), ref=REF).message


# --- labels -----------------------------------------------------------------------------


def test_labels() -> None:
    assert [status_label(s) for s in Status] == [
        "Investigating",
        "Identified",
        "Monitoring",
        "Resolved",
    ]
    assert [severity_label(s) for s in Severity] == ["SEV1", "SEV2", "SEV3", "SEV4"]


# --- timeline order ---------------------------------------------------------------------


@dataclass
class Entry:
    occurred_at: datetime
    text: str


def test_order_timeline_sorts_backdated_entries_by_when_they_happened() -> None:
    recorded = [
        Entry(DECLARED, "declared"),
        Entry(DECLARED + timedelta(minutes=10), "status"),
        Entry(DECLARED - timedelta(minutes=30), "started (backdated)"),
        Entry(DECLARED + timedelta(minutes=5), "note at 10:05 (backdated)"),
    ]
    assert [e.text for e in order_timeline(recorded)] == [
        "started (backdated)",
        "declared",
        "note at 10:05 (backdated)",
        "status",
    ]


def test_order_timeline_keeps_recorded_order_for_ties() -> None:
    recorded = [Entry(DECLARED, str(i)) for i in range(20)]
    recorded.insert(5, Entry(DECLARED - timedelta(seconds=1), "first"))
    ordered = order_timeline(recorded)
    assert ordered[0].text == "first"
    assert [e.text for e in ordered[1:]] == [str(i) for i in range(20)]


def test_order_timeline_works_on_timeline_events_and_iterables() -> None:
    events = (
        TimelineEvent(EntryKind.NOTE, LATER, "b", None),
        TimelineEvent(EntryKind.NOTE, DECLARED, "a", None),
    )
    assert [e.text for e in order_timeline(iter(events))] == ["a", "b"]


def test_apply_never_mutates_the_state() -> None:
    current = state()
    snapshot = replace(current)
    apply(current, ChangeSeverity(to=Severity.SEV1, at=LATER, actor="U1"), ref=REF)
    apply(current, Resolve(at=LATER, actor="U1"), ref=REF)
    assert current == snapshot
