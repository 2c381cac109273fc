"""The paging rules the live bot and the simulator share: plan, escalation, ack_timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.core.enums import Severity
from bot.core.paging_plan import (
    STOPPED_BY_ACK,
    STOPPED_BY_RESOLUTION,
    Due,
    PagerKind,
    Timer,
    escalation_text,
    may_escalate,
    next_tier_brought_forward,
    plan_declaration,
    postmortem_due_at,
    role_pagers,
    roles_paged_at_declaration,
    status_reminder_at,
)
from bot.core.playbooks import load_playbook

T0 = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)

PLAYBOOK = load_playbook(
    """
name: payments
match: {services: [payments]}
roles:
  commander: {slack: ["@alice"]}
  oncall:    {pagerduty: {routing_key_env: PD_KEY}, slack: ["@bob"], ack_timeout: 2m}
  sre:       {opsgenie: {responders: [{type: team, name: sre}]}, webhook: {url_env: HOOK}}
  comms:     {slack: ["carol@example.com"]}
escalation:
  - {after: 0s, page: [oncall]}
  - {after: 10m, page: [sre]}
  - {after: 30m, page: [commander], opsgenie: {responders: [{type: team, name: leads}]}}
reminders: {status_update_every: {sev1: 10m, sev3: 1h}}
checklist: ["Check the provider"]
postmortem: {due_in: 3d}
""",
    filename="payments.yaml",
)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def test_a_declaration_pages_untiered_roles_and_tiers_due_now_and_sets_the_other_timers() -> None:
    plan = plan_declaration(PLAYBOOK, severity=Severity.SEV1, declared_at=T0)
    assert dict(plan.paged_now) == {"comms": 0, "oncall": 1}
    assert plan.tiers_now == (1,)
    assert plan.timers == (
        Timer(Due.ESCALATE, minutes(10), 2),
        Timer(Due.ESCALATE, minutes(30), 3),
        Timer(Due.STATUS_REMINDER, minutes(10)),
        Timer(Due.CHECKLIST_NUDGE, minutes(15)),
    )
    assert plan.checklist
    # No reminders at a severity the playbook does not name.
    sev2 = plan_declaration(PLAYBOOK, severity=Severity.SEV2, declared_at=T0)
    assert [t.kind for t in sev2.timers] == [Due.ESCALATE, Due.ESCALATE, Due.CHECKLIST_NUDGE]


def test_pagers_are_sent_pagerduty_opsgenie_webhook() -> None:
    assert role_pagers(PLAYBOOK.roles["sre"]) == [PagerKind.OPSGENIE, PagerKind.WEBHOOK]
    assert role_pagers(PLAYBOOK.roles["oncall"]) == [PagerKind.PAGERDUTY]
    assert role_pagers(PLAYBOOK.roles["comms"]) == []
    assert roles_paged_at_declaration(PLAYBOOK) == {"comms": 0, "oncall": 1}


def test_a_tier_is_paged_once_while_open_and_unacknowledged() -> None:
    def may(**changes: object) -> bool:
        values: dict[str, object] = {
            "tier": 2,
            "tier_count": 3,
            "resolved": False,
            "acknowledged": False,
            "highest_tier_paged": 1,
        }
        values.update(changes)
        return may_escalate(**values)  # type: ignore[arg-type]

    assert may()
    assert not may(resolved=True)
    assert not may(acknowledged=True)
    assert not may(highest_tier_paged=2)  # paged already (a timer and a button at once)
    assert not may(tier=4) and not may(tier=0)


def test_ack_timeout_brings_the_next_tier_forward_never_later_than_its_after() -> None:
    sooner = next_tier_brought_forward(
        PLAYBOOK, role_name="oncall", tier=1, paged_at=minutes(0), declared_at=T0
    )
    assert sooner == Timer(Due.ESCALATE, minutes(2), 2)
    capped = next_tier_brought_forward(
        PLAYBOOK, role_name="oncall", tier=1, paged_at=minutes(9), declared_at=T0
    )
    assert capped == Timer(Due.ESCALATE, minutes(10), 2)
    assert (
        next_tier_brought_forward(
            PLAYBOOK, role_name="sre", tier=2, paged_at=minutes(10), declared_at=T0
        )
        is None
    )  # no ack_timeout
    assert (
        next_tier_brought_forward(
            PLAYBOOK, role_name="oncall", tier=3, paged_at=minutes(30), declared_at=T0
        )
        is None
    )  # no tier after the last


def test_the_timeline_says_what_happened_to_a_tier_due_at_declaration() -> None:
    assert escalation_text(PLAYBOOK, 1, actor=None, elapsed=timedelta(0)) == "Paged oncall (tier 1)"
    assert escalation_text(PLAYBOOK, 3, actor=None, elapsed=timedelta(minutes=30)) == (
        "Escalated to tier 3 (commander, Opsgenie responders): nobody acknowledged within "
        "30 minutes"
    )
    assert escalation_text(PLAYBOOK, 2, actor="U1", elapsed=timedelta(minutes=3)) == (
        "Escalated to tier 2 (sre): by <@U1>"
    )


def test_reminders_postmortem_and_what_stops_what() -> None:
    assert status_reminder_at(PLAYBOOK, severity=Severity.SEV3, now=minutes(5)) == minutes(65)
    assert status_reminder_at(PLAYBOOK, severity=Severity.SEV4, now=minutes(5)) is None
    assert postmortem_due_at(PLAYBOOK, resolved_at=T0) == T0 + timedelta(days=3)
    assert STOPPED_BY_ACK == (Due.ESCALATE,)
    assert set(STOPPED_BY_RESOLUTION) == {Due.ESCALATE, Due.STATUS_REMINDER, Due.CHECKLIST_NUDGE}
