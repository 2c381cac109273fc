"""The simulator: tiers, ack_timeout, acknowledgements, reminders, checklist, postmortem,
selection by service and severity, findings, and the output's exact form."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.core.enums import Severity
from bot.core.playbooks import Playbook, load_playbook, load_playbooks
from bot.core.simulation import (
    Ack,
    EventKind,
    choose_playbook,
    offset_text,
    render_json,
    render_text,
    simulate,
)

DB = """\
name: db
match: {services: [postgres], min_severity: sev2}
roles:
  commander: {slack: ["@alice", "S0DBONCALL"], required: true}
  ops:       {pagerduty: {routing_key_env: PD_DB_KEY}, ack_timeout: 2m}
  dba:       {slack: ["dan@example.com", "U0ERIN"], ack_timeout: 5m}
  comms:     {slack: ["carol@example.com"]}
escalation:
  - {after: 5m, page: [ops]}
  - {after: 10m, page: [dba]}
  - after: 30m
    page: [commander]
    opsgenie: {responders: [{type: team, name: dba}], api_key_env: OG_DB_KEY}
reminders: {status_update_every: {sev1: 15m, sev2: 30m, sev3: 2h}}
checklist: ["Post a status update", "Check replication lag"]
postmortem: {due_in: 5d}
"""


def db() -> Playbook:
    return load_playbook(DB, filename="db.yaml")


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("+")]


def test_a_whole_run_reads_as_one_line_per_event() -> None:
    run = simulate(
        db(),
        severity=Severity.SEV2,
        duration=timedelta(hours=1),
        selection="named with --playbook",
    )
    assert render_text(run) == (
        "playbook db: named with --playbook\n"
        "run: sev2 for 1h; acknowledgements: none; status updates: none\n"
        "roles:\n"
        "  commander: @alice, S0DBONCALL; required\n"
        "  ops: nobody named; pages through PagerDuty; ack_timeout 2m\n"
        "  dba: dan@example.com, U0ERIN; ack_timeout 5m\n"
        "  comms: carol@example.com\n"
        "\n"
        "+00:00  declared (sev2)\n"
        "+00:00  page comms by Slack DM (carol@example.com)\n"
        "+00:00  post the checklist (2 items)\n"
        "+05:00  escalate tier 1: page ops by PagerDuty (routing key from PD_DB_KEY)\n"
        "+05:00  ops's ack_timeout (2m) brings tier 2 forward from +10:00 to +07:00\n"
        "+07:00  escalate tier 2: page dba by Slack DM (dan@example.com, U0ERIN)\n"
        "+07:00  dba's ack_timeout (5m) brings tier 3 forward from +30:00 to +12:00\n"
        "+12:00  escalate tier 3: page commander by Slack DM (the commander: the first found "
        "of @alice, S0DBONCALL)\n"
        "+12:00  escalate tier 3: page the tier's Opsgenie responders (team dba; API key from "
        "OG_DB_KEY)\n"
        "+15:00  checklist nudge: post the checklist again (2 items)\n"
        "+30:00  status update reminder (sev2: every 30m)\n"
        "+1:00:00  status update reminder (sev2: every 30m)\n"
        "+1:00:00  resolved at the end of the run (--for 1h): escalation, status reminders and "
        "the checklist nudge stop; the postmortem is due 5d later, at +121:00:00\n"
        "\n"
        "findings:\n"
        "  - after the last page at +12:00, nobody acknowledges and no further tier pages "
        "anyone for 48m: on a sev1 that is more than 15m without an acknowledgement or a "
        "further tier (escalation is the same at every severity)\n"
    )


def test_offsets_are_minutes_under_an_hour_and_hours_from_an_hour_on() -> None:
    assert offset_text(timedelta(0)) == "+00:00"
    assert offset_text(timedelta(minutes=5, seconds=30)) == "+05:30"
    assert offset_text(timedelta(minutes=59, seconds=59)) == "+59:59"
    assert offset_text(timedelta(hours=1)) == "+1:00:00"
    assert offset_text(timedelta(days=5, hours=2)) == "+122:00:00"


def test_without_ack_timeout_tiers_fire_at_their_own_after() -> None:
    text = DB.replace(", ack_timeout: 2m", "").replace(", ack_timeout: 5m", "")
    playbook = load_playbook(text, filename="db.yaml")
    run = simulate(playbook, severity=Severity.SEV2, duration=timedelta(hours=1))
    pages = [(e.at, e.tier, e.role) for e in run.events if e.kind is EventKind.PAGE]
    assert pages == [
        (minutes(0), 0, "comms"),
        (minutes(5), 1, "ops"),
        (minutes(10), 2, "dba"),
        (minutes(30), 3, "commander"),
        (minutes(30), 3, None),  # the tier's own Opsgenie responders
    ]
    assert not [e for e in run.events if e.kind is EventKind.BROUGHT_FORWARD]


def test_an_acknowledgement_stops_escalation_and_nothing_else() -> None:
    run = simulate(
        db(),
        severity=Severity.SEV2,
        duration=timedelta(hours=1),
        acks=[Ack("dba", minutes(9)), Ack("ops", minutes(12))],
        update_every=minutes(20),
    )
    assert lines(render_text(run))[7:] == [
        "+09:00  dba acknowledges (--ack dba@9m): escalation stops: tier 3 at +12:00 will not "
        "page; reminders and the checklist nudge go on",
        "+12:00  ops acknowledges (--ack ops@12m): already acknowledged by dba at +09:00; "
        "nothing changes",
        "+15:00  checklist nudge: post the checklist again (2 items)",
        "+20:00  status update posted (--update-every 20m): the next reminder moves to +50:00",
        "+40:00  status update posted (--update-every 20m): the next reminder moves to +1:10:00",
        "+1:00:00  resolved at the end of the run (--for 1h): escalation, status reminders and "
        "the checklist nudge stop; the postmortem is due 5d later, at +121:00:00",
    ]
    assert run.findings == ()  # acknowledged in time; the commander not paged is no mistake


def test_a_role_that_was_not_paged_yet_cannot_acknowledge() -> None:
    run = simulate(
        db(), severity=Severity.SEV2, duration=minutes(20), acks=[Ack("commander", minutes(3))]
    )
    (ignored,) = [e for e in run.events if e.kind is EventKind.ACK_IGNORED]
    assert ignored.text == (
        "commander cannot acknowledge (--ack commander@3m): commander has not been paged by "
        "then, so there is no page to acknowledge; nothing changes"
    )
    assert [e.tier for e in run.events if e.kind is EventKind.PAGE][-1] == 3  # escalation went on


def test_an_acknowledgement_at_the_moment_a_tier_is_due_comes_after_it() -> None:
    run = simulate(
        db(), severity=Severity.SEV2, duration=minutes(20), acks=[Ack("ops", minutes(7))]
    )
    texts = lines(render_text(run))
    assert texts.index(
        "+07:00  escalate tier 2: page dba by Slack DM (dan@example.com, U0ERIN)"
    ) < (next(i for i, t in enumerate(texts) if t.startswith("+07:00  ops acknowledges")))


def test_reminders_follow_the_severity_and_updates_reset_them() -> None:
    sev1 = simulate(db(), severity=Severity.SEV1, duration=minutes(50))
    reminders = [e.at for e in sev1.events if e.kind is EventKind.STATUS_REMINDER]
    assert reminders == [minutes(15), minutes(30), minutes(45)]
    sev4 = simulate(db(), severity=Severity.SEV4, duration=minutes(50), update_every=minutes(20))
    assert not [e for e in sev4.events if e.kind is EventKind.STATUS_REMINDER]
    assert [e.text for e in sev4.events if e.kind is EventKind.STATUS_UPDATE][0] == (
        "status update posted (--update-every 20m): no reminders at sev4"
    )
    updated = simulate(db(), severity=Severity.SEV1, duration=minutes(50), update_every=minutes(10))
    # An update every 10 minutes means a 15-minute reminder never comes due.
    assert not [e for e in updated.events if e.kind is EventKind.STATUS_REMINDER]


def test_checklist_nudge_and_postmortem_and_nothing_after_the_run() -> None:
    bare = load_playbook(
        "name: bare\nmatch: {default: true}\nroles: {commander: {}}\n", filename="bare.yaml"
    )
    run = simulate(bare, severity=Severity.SEV3, duration=minutes(10))
    assert lines(render_text(run)) == [
        "+00:00  declared (sev3)",
        "+10:00  resolved at the end of the run (--for 10m): escalation, status reminders and "
        "the checklist nudge stop; no postmortem due date (the playbook sets no "
        "postmortem.due_in)",
    ]
    short = simulate(db(), severity=Severity.SEV2, duration=minutes(6))
    assert max(e.at for e in short.events) == minutes(6)
    assert not [e for e in short.events if e.kind is EventKind.CHECKLIST_NUDGE]
    assert short.postmortem_due == timedelta(days=5, minutes=6)


def test_a_tier_due_at_once_is_paged_at_declaration() -> None:
    playbook = load_playbook(
        DB.replace("after: 5m, page: [ops]", "after: 0s, page: [ops]"), filename="db.yaml"
    )
    run = simulate(playbook, severity=Severity.SEV2, duration=minutes(10))
    assert lines(render_text(run))[:5] == [
        "+00:00  declared (sev2)",
        "+00:00  page comms by Slack DM (carol@example.com)",
        "+00:00  tier 1 at declaration: page ops by PagerDuty (routing key from PD_DB_KEY)",
        "+00:00  ops's ack_timeout (2m) brings tier 2 forward from +10:00 to +02:00",
        "+00:00  post the checklist (2 items)",
    ]


# -- selection -------------------------------------------------------------------------------

SELECTION = {
    "db.yaml": "name: db\nmatch: {services: [postgres, Orders], min_severity: sev2}\n",
    "db-critical.yaml": "name: db-critical\nmatch: {services: [postgres], min_severity: sev1}\n",
    "orders.yaml": "name: orders\nmatch: {services: [orders], min_severity: sev2}\n",
    "fallback.yaml": "name: fallback\nmatch: {default: true}\n",
}


def test_selection_is_the_live_bots_and_says_why() -> None:
    playbooks = load_playbooks(SELECTION)
    chosen, why = choose_playbook(playbooks, service="postgres", severity=Severity.SEV2)
    assert chosen is not None and chosen.name == "db"
    assert why == "service postgres is in its match.services and sev2 meets its min_severity sev2"
    chosen, why = choose_playbook(playbooks, service="postgres", severity=Severity.SEV1)
    assert chosen is not None and chosen.name == "db-critical"
    assert why.endswith("; it wins over db (the stricter min_severity first, then the name)")
    chosen, why = choose_playbook(playbooks, service="ORDERS", severity=Severity.SEV1)
    assert chosen is not None and chosen.name == "db"  # same min_severity: by name
    assert why.endswith("it wins over orders (the stricter min_severity first, then the name)")
    chosen, why = choose_playbook(playbooks, service="postgres", severity=Severity.SEV3)
    assert chosen is not None and chosen.name == "fallback"
    assert why == (
        "the default playbook: the playbooks listing service postgres apply only at a higher "
        "severity (db from sev2, db-critical from sev1)"
    )
    chosen, why = choose_playbook(playbooks, service="kafka", severity=Severity.SEV1)
    assert chosen is not None and chosen.name == "fallback"
    assert why == "the default playbook: no playbook lists service kafka"
    without_default = [p for p in playbooks if not p.is_default]
    chosen, why = choose_playbook(without_default, service="kafka", severity=Severity.SEV1)
    assert chosen is None
    assert why == (
        "no playbook lists service kafka and there is no default playbook: nothing is paged, "
        "no reminders"
    )


# -- findings --------------------------------------------------------------------------------

CARELESS = """\
name: careless
match: {services: [search], min_severity: sev2}
roles:
  commander: {required: true}
  scribe:    {required: true}
  ops:       {pagerduty: {routing_key_env: PD_KEY}}
  comms:     {}
  dba:       {slack: ["@dan"]}
escalation:
  - {after: 20m, page: [ops]}
  - {after: 25m, page: [comms]}
  - {after: 3h, page: [dba]}
reminders: {status_update_every: {sev1: 2h, sev2: 1h}}
"""


def test_findings_point_at_what_a_reviewer_should_look_at() -> None:
    run = simulate(
        load_playbook(CARELESS, filename="careless.yaml"),
        severity=Severity.SEV1,
        duration=timedelta(hours=2),
    )
    assert run.findings == (
        "required role scribe: nobody fills it (the playbook names no one for it); it stays "
        "empty until someone runs `/incident role scribe @user`",
        "scribe is never paged: no tier names it and the playbook names nobody and no pager for it",
        "comms is never paged: its tier fires but the playbook names nobody and no pager for it",
        "dba is never paged within 2h: its tier (tier 3 at +3:00:00) come after the end of the run",
        "nobody is paged for the first 20m: on a sev1 that is more than 15m without an "
        "acknowledgement or a further tier (escalation is the same at every severity)",
        "after the last page at +20:00, nobody acknowledges and no further tier pages anyone "
        "for 1h40m: on a sev1 that is more than 15m without an acknowledgement or a further "
        "tier (escalation is the same at every severity)",
        "status-update reminders every 2h at sev1: slower than a sev1 warrants (at most every 30m)",
        "status-update reminders at sev1 (every 2h) come less often than at sev2 (every 1h)",
        "tier 3 (after 3h) comes after the incident is over (--for 2h): it never pages in this run",
    )
    (nobody,) = [e for e in run.events if e.kind is EventKind.NOBODY_TO_PAGE]
    assert nobody.at == minutes(25) and nobody.text.startswith(
        "escalate tier 2: nobody to page for comms"
    )


def test_a_sev1_without_reminders_is_a_finding_and_a_careful_playbook_has_none() -> None:
    quiet = load_playbook(
        "name: quiet\nmatch: {services: [x]}\nroles: {ops: {slack: ['@o']}}\n",
        filename="quiet.yaml",
    )
    run = simulate(quiet, severity=Severity.SEV3, duration=minutes(10))
    assert run.findings == (
        "no status-update reminders at sev1: nobody is reminded to update stakeholders (at "
        "most every 30m is usual)",
        "no status-update reminders at sev2: nobody is reminded to update stakeholders (at "
        "most every 1h is usual)",
    )
    careful = simulate(
        db(), severity=Severity.SEV1, duration=minutes(40), acks=[Ack("ops", minutes(6))]
    )
    assert careful.findings == ()


def test_json_carries_the_same_events() -> None:
    run = simulate(
        db(), severity=Severity.SEV2, duration=minutes(20), acks=[Ack("ops", minutes(6))]
    )
    document = json.loads(render_json(run))
    assert document["playbook"] == "db" and document["for"] == "20m"
    assert document["acks"] == [{"role": "ops", "after": "6m"}]
    assert [e["text"] for e in document["events"]] == [e.text for e in run.events]
    page = document["events"][3]
    assert page == {
        "at": "+05:00",
        "seconds": 300,
        "kind": "page",
        "role": "ops",
        "via": "pagerduty",
        "tier": 1,
        "targets": ["routing key from PD_DB_KEY"],
        "text": "escalate tier 1: page ops by PagerDuty (routing key from PD_DB_KEY)",
    }
    assert document["resolved"] == {"at": "+20:00", "postmortem_due": "+120:20:00"}
    assert document["roles"][1] == {
        "role": "ops",
        "people": "nobody named",
        "pagers": ["pagerduty"],
        "required": False,
        "ack_timeout": "2m",
    }


def test_roles_filled_from_on_call_schedules_say_where_their_people_come_from() -> None:
    playbook = load_playbook(
        """\
name: oncall
match: {default: true}
roles:
  commander: {slack: ["@alice"], oncall: {pagerduty_escalation_policy: PXYZ789}}
  ops: {pagerduty: {routing_key_env: PD_OPS_KEY}, oncall: {pagerduty_schedule: PABC123}}
  dba: {oncall: {opsgenie_schedule: dba-schedule}}
""",
        filename="oncall.yaml",
    )
    text = render_text(
        simulate(playbook, severity=Severity.SEV3, duration=minutes(10), selection="named")
    )
    assert "  ops: on call in PagerDuty schedule PABC123; pages through PagerDuty" in text
    assert (
        "  commander: @alice, on call at the first level of PagerDuty escalation policy PXYZ789"
        in text
    )
    assert "  dba: on call in Opsgenie schedule dba-schedule" in text
    assert "page dba by Slack DM (on call in Opsgenie schedule dba-schedule)" in text
