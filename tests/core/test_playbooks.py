"""Playbooks: the model, loading with line numbers, and which playbook an incident gets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.enums import Severity
from bot.core.playbooks import (
    DEFAULT_OPSGENIE_KEY_ENV,
    Playbook,
    PlaybookInvalid,
    PlaybookProblem,
    SlackTargetKind,
    all_services,
    check_playbook_files,
    format_problem,
    load_playbook,
    load_playbooks,
    select_playbook,
    slack_target_kind,
)

ROOT = Path(__file__).resolve().parents[2]

DESIGN_EXAMPLE = """\
name: database
match: {services: [postgres, checkout-db], min_severity: sev2}
roles:
  commander: {slack: ["@alice", "S0DBONCALL"], required: true}
  ops:       {pagerduty: {routing_key_env: PD_DB_KEY}, ack_timeout: 5m}
  comms:     {slack: ["U024BE7LH"]}
escalation:            # tiers paged in turn until someone acknowledges
  - {after: 5m, page: [ops]}
  - {after: 10m, page: [commander], opsgenie: {responders: [{type: team, name: dba}]}}
reminders: {status_update_every: {sev1: 15m, sev2: 30m, sev3: 2h}}
checklist: ["Post a status update", "Check the cache hit rate dashboard"]
bookmarks: [{title: DB dashboard, link: "https://grafana.example.com/d/db"}]
postmortem: {due_in: 5d}
"""


def problems_in(text: str, filename: str = "pb/test.yaml") -> list[str]:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(text, filename=filename)
    return [format_problem(p) for p in caught.value.problems]


def playbook(text: str, filename: str = "pb/test.yaml") -> Playbook:
    return load_playbook(text, filename=filename)


# --- valid playbooks ---


def test_the_design_example_loads_exactly() -> None:
    pb = playbook(DESIGN_EXAMPLE, "playbooks/database.yaml")
    assert pb.name == "database"
    assert pb.match.services == ("postgres", "checkout-db")
    assert pb.match.min_severity is Severity.SEV2
    assert not pb.is_default and not pb.private and pb.admins == ()
    assert list(pb.roles) == ["commander", "ops", "comms"]
    commander, ops, comms = pb.roles["commander"], pb.roles["ops"], pb.roles["comms"]
    assert commander.slack == ("@alice", "S0DBONCALL") and commander.required
    assert ops.pagerduty is not None and ops.pagerduty.routing_key_env == "PD_DB_KEY"
    assert ops.ack_timeout == timedelta(minutes=5) and not ops.required and ops.has_pager
    assert comms.slack == ("U024BE7LH",) and not comms.has_pager
    assert [t.after for t in pb.tiers] == [timedelta(minutes=5), timedelta(minutes=10)]
    assert pb.tiers[0].page == ("ops",) and pb.tiers[0].opsgenie is None
    opsgenie = pb.tiers[1].opsgenie
    assert opsgenie is not None
    assert [(r.type, r.name) for r in opsgenie.responders] == [("team", "dba")]
    assert pb.opsgenie_key_env(opsgenie) == DEFAULT_OPSGENIE_KEY_ENV == "OPSGENIE_API_KEY"
    assert pb.roles_paged_at(0) == {"ops": ops}
    assert pb.roles_paged_at(1) == {"commander": commander}
    assert pb.reminder_interval(Severity.SEV1) == timedelta(minutes=15)
    assert pb.reminder_interval(Severity.SEV3) == timedelta(hours=2)
    assert pb.reminder_interval(Severity.SEV4) is None
    assert pb.checklist == ("Post a status update", "Check the cache hit rate dashboard")
    assert [(b.title, b.link) for b in pb.bookmarks] == [
        ("DB dashboard", "https://grafana.example.com/d/db")
    ]
    assert pb.postmortem.due_in == timedelta(days=5)
    assert pb.all_services() == ("postgres", "checkout-db")


def test_the_shipped_playbooks_load() -> None:
    files = {
        str(path): path.read_text(encoding="utf-8")
        for path in sorted((ROOT / "playbooks").glob("*.yaml"))
    }
    loaded = {pb.name: pb for pb in load_playbooks(files)}
    assert sorted(loaded) == ["checkout", "database", "default", "security"]
    assert loaded["default"].is_default
    assert loaded["default"].roles["commander"].slack == ()
    assert [loaded["default"].reminder_interval(s) for s in Severity] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=4),
    ]
    assert loaded["security"].private and loaded["security"].admins == ("@priya", "S0SECLEADS")
    checkout = loaded["checkout"]
    sre = checkout.roles["sre"].opsgenie
    assert sre is not None and sre.priority == "P1"
    assert checkout.opsgenie_key_env(sre) == "OG_PAYMENTS_KEY"
    assert checkout.tiers[0].after == timedelta(0)
    assert all_services(loaded.values())[:3] == ["auth", "cart", "checkout"]


def test_name_defaults_to_the_file_name_and_values_are_lenient_where_harmless() -> None:
    pb = playbook(
        "match: {services: Search, min_severity: SEV1}\n"
        "roles:\n  commander:\n  ops: {slack: '@ann'}\n"
        "escalation: [{after: 1h30m, page: ops}]\n",
        "playbooks/search-team.yml",
    )
    assert pb.name == "search-team"
    assert pb.match.services == ("Search",) and pb.match.min_severity is Severity.SEV1
    assert pb.roles["commander"].slack == () and pb.roles["ops"].slack == ("@ann",)
    assert pb.tiers[0].page == ("ops",) and pb.tiers[0].after == timedelta(minutes=90)


def test_opsgenie_key_comes_from_the_target_then_the_file_then_the_default() -> None:
    pb = playbook(
        "match: {default: true}\nopsgenie: {api_key_env: OG_KEY}\n"
        "roles:\n  a: {opsgenie: {api_key_env: OG_A, responders: [{type: user, id: u1}]}}\n"
        "  b: {opsgenie: {responders: [{type: user, username: b@example.com}]}}\n"
    )
    a, b = pb.roles["a"].opsgenie, pb.roles["b"].opsgenie
    assert a is not None and b is not None
    assert (pb.opsgenie_key_env(a), pb.opsgenie_key_env(b)) == ("OG_A", "OG_KEY")


def test_slack_target_kinds() -> None:
    assert slack_target_kind("U024BE7LH") is SlackTargetKind.USER_ID
    assert slack_target_kind("W0SECCOMMS1") is SlackTargetKind.USER_ID
    assert slack_target_kind("S0DBONCALL") is SlackTargetKind.USERGROUP_ID
    assert slack_target_kind("@maria.garcia") is SlackTargetKind.HANDLE
    assert slack_target_kind("ann@example.com") is SlackTargetKind.EMAIL
    assert slack_target_kind("C0123ABC") is None
    assert slack_target_kind("alice") is None


# --- matching ---


@pytest.fixture
def catalogue() -> list[Playbook]:
    return [
        playbook("match: {default: true}\n", "pb/default.yaml"),
        playbook("match: {services: [postgres, checkout-db], min_severity: sev2}\n", "pb/db.yaml"),
        playbook("match: {services: [Postgres], min_severity: sev1}\n", "pb/db-critical.yaml"),
        playbook("match: {services: [checkout]}\n", "pb/checkout.yaml"),
        playbook("match: {services: [checkout]}\n", "pb/b-checkout.yaml"),
    ]


@pytest.mark.parametrize(
    ("service", "severity", "expected"),
    [
        ("postgres", Severity.SEV2, "db"),  # min sev2 is met by sev2
        ("postgres", Severity.SEV3, "default"),  # too mild for db: the default
        ("POSTGRES", Severity.SEV1, "db-critical"),  # case-insensitive; stricter min wins
        ("checkout-db", Severity.SEV1, "db"),
        ("checkout", Severity.SEV4, "b-checkout"),  # a tie goes to name order
        ("unknown", Severity.SEV1, "default"),
        (None, Severity.SEV1, "default"),
    ],
)
def test_select_playbook(
    catalogue: list[Playbook], service: str | None, severity: Severity, expected: str
) -> None:
    chosen = select_playbook(catalogue, service=service, severity=severity)
    assert chosen is not None and chosen.name == expected


def test_no_match_and_no_default_selects_nothing(catalogue: list[Playbook]) -> None:
    assert select_playbook(catalogue[1:], service="search", severity=Severity.SEV1) is None
    assert select_playbook([], service=None, severity=Severity.SEV1) is None


def test_a_service_match_beats_the_default_even_when_the_default_lists_services() -> None:
    pbs = [
        playbook("match: {default: true, services: [api]}\n", "pb/default.yaml"),
        playbook("match: {services: [web]}\n", "pb/web.yaml"),
    ]
    assert select_playbook(pbs, service="web", severity=Severity.SEV3) == pbs[1]
    assert select_playbook(pbs, service="api", severity=Severity.SEV3) == pbs[0]
    assert all_services(pbs) == ["api", "web"]


# --- broken playbooks: message, fix and line ---


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "match: {services: [db]}\nroles:\n  ops: {slack: ['@a']}\n"
            "escalation:\n  - {after: 5m, page: [ops]}\n  - {after: 10m, page: [dba]}\n",
            "pb/test.yaml:6: escalation[1].page[0]: unknown role `dba` — define it under "
            "roles: or use one of ops",
            id="unknown-role",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  commander: {}\n  comms: {}\n"
            "escalation:\n  - {after: 5m, page: [comander]}\n",
            "pb/test.yaml:6: escalation[0].page[0]: unknown role `comander` — did you mean "
            "`commander`? Otherwise define it under roles: or use one of commander, comms",
            id="unknown-role-typo",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  ops:\n    ack_timeout: 5 minutes\n",
            "pb/test.yaml:4: roles.ops.ack_timeout: `5 minutes` is not a duration — write `5m`",
            id="duration-in-words",
        ),
        pytest.param(
            "match: {services: [db]}\npostmortem: {due_in: 1 hour 30 mins}\n",
            "pb/test.yaml:2: postmortem.due_in: `1 hour 30 mins` is not a duration — write `1h30m`",
            id="duration-in-words-combined",
        ),
        pytest.param(
            "match: {services: [db]}\npostmortem: {due_in: soon}\n",
            "pb/test.yaml:2: postmortem.due_in: `soon` is not a duration — write durations "
            "like 30s, 5m, 2h, 1d or 1h30m",
            id="duration-nonsense",
        ),
        pytest.param(
            "match: {services: [db]}\nreminders:\n  status_update_every:\n    sev1: 0m\n",
            "pb/test.yaml:4: reminders.status_update_every.sev1: a duration must be longer "
            "than zero — write e.g. `30s`, `5m` or `1h`",
            id="zero-duration",
        ),
        pytest.param(
            "match: {services: [db]}\npostmortem: {due_in: 5}\n",
            "pb/test.yaml:2: postmortem.due_in: `5` has no unit — write it with one, e.g. "
            "`5m` or `5s`",
            id="duration-without-unit",
        ),
        pytest.param(
            "name: db\nmatch: {services: [db]}\nroles:\n  ops:\n    pagerduty:\n"
            "      routing_key: abc123\n",
            "pb/test.yaml:6: roles.ops.pagerduty.routing_key: a secret written inline — "
            "secrets stay in the environment: write `routing_key_env: PD_DB_KEY` and set "
            "PD_DB_KEY",
            id="inline-routing-key",
        ),
        pytest.param(
            "name: db\nmatch: {services: [db]}\nroles:\n  ops: {api_key: xyz}\n",
            "pb/test.yaml:4: roles.ops.api_key: a secret written inline — secrets stay in the "
            "environment: write `opsgenie: {api_key_env: OG_DB_KEY}` and set OG_DB_KEY",
            id="inline-api-key-on-the-role",
        ),
        pytest.param(
            "name: db\nmatch: {services: [db]}\nroles:\n"
            "  hook: {webhook: {url: 'https://hooks.example.com/T0/B0/xyz'}}\n",
            "pb/test.yaml:4: roles.hook.webhook.url: a secret written inline — secrets stay "
            "in the environment: write `url_env: DB_WEBHOOK_URL` and set DB_WEBHOOK_URL",
            id="inline-webhook-url",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  ops: {pagerduty: {routing_key_env: pd-db-key}}\n",
            "pb/test.yaml:3: roles.ops.pagerduty.routing_key_env: not an environment variable "
            "name — write `PD_DB_KEY`",
            id="bad-env-name",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n"
            "  ops: {pagerduty: {routing_key_env: e93facc04764012d7bfb002500d5d1a6}}\n",
            "pb/test.yaml:3: roles.ops.pagerduty.routing_key_env: not an environment variable "
            "name — write the variable's name: capitals, digits and `_`, starting with a "
            "letter (e.g. `PD_DB_KEY`), and keep the secret itself in the environment",
            id="secret-in-env-field-is-never-echoed",
        ),
        pytest.param(
            "match: {services: [db]}\nescalaton: []\n",
            "pb/test.yaml:2: escalaton: unknown key `escalaton` — did you mean `escalation`?",
            id="unknown-key-typo",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  ops: {pager: x}\n",
            "pb/test.yaml:3: roles.ops.pager: unknown key `pager` — did you mean `pagerduty`?",
            id="unknown-key-nested",
        ),
        pytest.param(
            "match: {services: [db]}\nbookmarks:\n  - {title: X, url: 'https://x.example.com'}\n",
            "pb/test.yaml:3: bookmarks[0].url: unknown key `url` — did you mean `link`?",
            id="bookmark-url-means-link",
        ),
        pytest.param(
            "match: {services: [db], min_severity: sev5}\n",
            "pb/test.yaml:1: match.min_severity: `sev5` is not a severity — use sev1, sev2, "
            "sev3 or sev4 (sev1 is the most severe)",
            id="bad-severity",
        ),
        pytest.param(
            "match: {services: [db]}\nescalation:\n  - {after: 10m, page: [ops]}\n"
            "  - {after: 10m, page: [ops]}\nroles: {ops: {}}\n",
            "pb/test.yaml:4: escalation[1].after: `after: 10m` is not later than escalation[0] "
            "(`10m`) — tiers are paged in order and `after` counts from the start of paging, "
            "so give each tier a later `after` than the one before",
            id="tiers-not-increasing",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  ops:\n    slack: [bob]\n",
            "pb/test.yaml:4: roles.ops.slack[0]: `bob` is not a Slack target — write `@bob` if "
            "that is a handle (handles start with `@`)",
            id="bad-slack-target",
        ),
        pytest.param(
            "match: {services: [db]}\nadmins: ['<@U024BE7LH>']\n",
            "pb/test.yaml:2: admins[0]: `<@U024BE7LH>` is not a Slack target — write the bare "
            "id: `U024BE7LH`",
            id="slack-mention-syntax",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  og:\n    opsgenie:\n      responders:\n"
            "        - {type: group, name: dba}\n",
            "pb/test.yaml:6: roles.og.opsgenie.responders[0].type: `group` is not an Opsgenie "
            "responder type — use one of team, user, escalation, schedule",
            id="bad-responder-type",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  og: {opsgenie: {responders: [{type: user, "
            "name: bob}]}}\n",
            "pb/test.yaml:3: roles.og.opsgenie.responders[0]: a `user` responder needs exactly "
            "one of `id` or `username` — e.g. `{type: team, name: dba}` or `{type: user, "
            "username: ann@example.com}`",
            id="user-responder-by-name",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  'On Call': {}\n",
            "pb/test.yaml:3: roles.On Call: `On Call` is not a role name — use lowercase "
            "letters, digits, `-` and `_`, starting with a letter, e.g. `on-call`",
            id="bad-role-name",
        ),
        pytest.param(
            "name: db\n",
            "pb/test.yaml:1: match: `match` is missing — add `match: {services: [...]}`, or "
            "`match: {default: true}` for the default playbook",
            id="no-match",
        ),
        pytest.param(
            "name: db\nmatch: {min_severity: sev1}\n",
            "pb/test.yaml:2: match: this playbook matches no incident — add `services: [...]`, "
            "or `default: true` for the default playbook",
            id="matches-nothing",
        ),
        pytest.param(
            "match: {services: [db]}\nescalation:\n  - after: 5m\n",
            "pb/test.yaml:3: escalation[0]: this tier pages no one — add `page: [ROLE, ...]` or "
            "`opsgenie:`",
            id="tier-pages-no-one",
        ),
        pytest.param(
            "match: {services: [db]}\nbookmarks: [{title: Wiki, link: 'https://u:p@wiki.example.com'}]\n",
            "pb/test.yaml:2: bookmarks[0].link: this link carries credentials, and everyone in "
            "the channel sees bookmarks — link to a page that needs no password in its address",
            id="bookmark-with-credentials",
        ),
        pytest.param(
            "match: {services: [db]}\nprivate: yes please\n",
            "pb/test.yaml:2: private: expected true or false — write `true` or `false`",
            id="not-a-bool",
        ),
        pytest.param(
            "match: {services: [db]}\nroles:\n  ops:\n    slack: [@bob]\n",
            "pb/test.yaml:4: YAML syntax error: found character '@' that cannot start any "
            'token — quote values that start with `@`, e.g. `"@alice"`',
            id="unquoted-handle",
        ),
        pytest.param(
            "match: {services: [db]}\nmatch: {default: true}\n",
            "pb/test.yaml:2: match: `match` is written twice here — merge the two: YAML "
            "silently keeps only the last one",
            id="duplicate-key",
        ),
        pytest.param(
            "",
            "pb/test.yaml:1: the file is empty — a playbook needs at least `match:`; start "
            "from playbooks/default.yaml",
            id="empty",
        ),
        pytest.param(
            "- name: db\n",
            "pb/test.yaml:1: a playbook is a mapping of keys such as `name:`, `match:` and "
            "`roles:` — write `key: value` lines at the top level; see playbooks/default.yaml",
            id="not-a-mapping",
        ),
        pytest.param(
            "match: {services: [db]}\n",
            "pb/Test Playbook.yaml:1: name: `Test Playbook` is not a playbook name — use "
            "lowercase letters, digits, `-` and `_` (without `name:`, the file name is used)",
            id="file-name-is-not-a-name",
        ),
    ],
)
def test_a_broken_playbook_names_line_path_problem_and_fix(text: str, expected: str) -> None:
    filename = expected.split(":", 1)[0]
    assert problems_in(text, filename) == [expected]


def test_every_problem_in_a_file_is_reported_in_line_order() -> None:
    text = (
        "name: db\n"
        "match: {services: [db], min_severity: sev9}\n"
        "roles:\n"
        "  ops: {ack_timeout: 5 mins, pagerduty: {routing_key_env: PD_DB_KEY}}\n"
        "  comms: {slack: [carol]}\n"
        "reminders: {status_update_every: {sev1: often}}\n"
        "bookmark: []\n"
    )
    assert problems_in(text) == [
        "pb/test.yaml:2: match.min_severity: `sev9` is not a severity — use sev1, sev2, sev3 "
        "or sev4 (sev1 is the most severe)",
        "pb/test.yaml:4: roles.ops.ack_timeout: `5 mins` is not a duration — write `5m`",
        "pb/test.yaml:5: roles.comms.slack[0]: `carol` is not a Slack target — write `@carol` "
        "if that is a handle (handles start with `@`)",
        "pb/test.yaml:6: reminders.status_update_every.sev1: `often` is not a duration — "
        "write durations like 30s, 5m, 2h, 1d or 1h30m",
        "pb/test.yaml:7: bookmark: unknown key `bookmark` — did you mean `bookmarks`?",
    ]


def test_playbook_invalid_lists_every_problem_in_its_message() -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(
            "name: db\nmatch: {services: [db]}\nescalaton: []\nprivat: true\n", filename="x.yaml"
        )
    assert str(caught.value) == (
        "2 problems in the playbooks:\n"
        "x.yaml:3: escalaton: unknown key `escalaton` — did you mean `escalation`?\n"
        "x.yaml:4: privat: unknown key `privat` — did you mean `private`?"
    )


def test_names_and_the_default_are_checked_across_files() -> None:
    loaded, problems = check_playbook_files(
        {
            "pb/a.yaml": "match: {default: true}\n",
            "pb/b.yaml": "name: a\nmatch: {services: [x]}\n",
            "pb/c.yaml": "match:\n  services: [y]\n  default: true\n",
        }
    )
    assert [one.playbook.name for one in loaded] == ["a", "a", "c"]
    assert [format_problem(p) for p in problems] == [
        "pb/b.yaml:1: name: the playbook name `a` is already used by pb/a.yaml — give each "
        "playbook its own `name:` (without `name:`, the file name is the name)",
        "pb/c.yaml:3: match.default: a second default playbook (pb/a.yaml is the default) — "
        "keep `default: true` in one playbook only",
    ]
    with pytest.raises(PlaybookInvalid):
        load_playbooks(
            {
                "pb/a.yaml": "match: {default: true}\n",
                "pb/b.yaml": "name: a\nmatch: {default: true}\n",
            }
        )


# --- every problem in one pass ---

SEVERAL_PROBLEMS = """\
roles:
  commander: {slack: ["@alice", carol]}
  ops: {ack_timeout: 5 minutes}
  dba: 5
escalation:
  - {after: 5 mins, page: [ops, opz]}
  - {after: 10m, page: [dba, comander]}
  - {after: 2m, page: [commander]}
  - {after: 20m, page: [Ops]}
checklist: ["ok", ""]
bookmark: []
"""


def test_every_independent_problem_of_a_file_is_reported_in_one_pass() -> None:
    # No `match`, bad durations in a role and in a tier, broken roles: none of them hides the
    # tiers' unknown roles or their order, and taking the broken parts out invents nothing
    # (`dba: 5` is still a role the tiers may page; `page: [Ops]` is not "a tier that pages
    # no one").
    roles_fix = "Otherwise define it under roles: or use one of commander, dba, ops"
    expected = [
        "pb/test.yaml:1: match: `match` is missing — add `match: {services: [...]}`, or "
        "`match: {default: true}` for the default playbook",
        "pb/test.yaml:2: roles.commander.slack[1]: `carol` is not a Slack target — write "
        "`@carol` if that is a handle (handles start with `@`)",
        "pb/test.yaml:3: roles.ops.ack_timeout: `5 minutes` is not a duration — write `5m`",
        "pb/test.yaml:4: roles.dba: expected a mapping — write `key: value` pairs",
        "pb/test.yaml:6: escalation[0].after: `5 mins` is not a duration — write `5m`",
        "pb/test.yaml:6: escalation[0].page[1]: unknown role `opz` — did you mean `ops`? "
        + roles_fix,
        "pb/test.yaml:7: escalation[1].page[1]: unknown role `comander` — did you mean "
        "`commander`? " + roles_fix,
        "pb/test.yaml:8: escalation[2].after: `after: 2m` is not later than escalation[1] "
        "(`10m`) — tiers are paged in order and `after` counts from the start of paging, so "
        "give each tier a later `after` than the one before",
        "pb/test.yaml:9: escalation[3].page[0]: `Ops` is not a role name — use lowercase "
        "letters, digits, `-` and `_`, starting with a letter, e.g. `ops`",
        "pb/test.yaml:10: checklist[1]: this text is empty — write something or remove the entry",
        "pb/test.yaml:11: bookmark: unknown key `bookmark` — did you mean `bookmarks`?",
    ]
    assert problems_in(SEVERAL_PROBLEMS) == expected
    assert problems_in(SEVERAL_PROBLEMS) == expected  # the same order every time


def test_fixing_one_problem_reveals_nothing_new() -> None:
    # What the first run did not report is not there: fixing each problem in turn only ever
    # removes lines from the report.
    fixes = [
        ("roles:\n", "match: {services: [web]}\nroles:\n"),
        ('"@alice", carol', '"@alice", "@carol"'),
        ("5 minutes", "5m"),
        ("dba: 5", "dba: {}"),
        ("5 mins", "5m"),
        ("opz", "ops"),
        ("comander", "commander"),
        ("after: 2m", "after: 15m"),
        ("[Ops]", "[ops]"),
        ('"ok", ""', '"ok"'),
        ("bookmark: []\n", ""),
    ]

    def reported_in(text: str) -> set[str]:  # without line numbers: the first fix adds a line
        _loaded, problems = check_playbook_files({"pb/test.yaml": text})
        return {format_problem(p).split(": ", 1)[1] for p in problems}

    text = SEVERAL_PROBLEMS
    reported = reported_in(text)
    for old, new in fixes:
        text = text.replace(old, new)
        now = reported_in(text)
        assert now < reported, (old, now - reported)
        reported = now
    assert reported == set()
    assert playbook(text).tiers[2].after == timedelta(minutes=15)


def test_a_file_with_problems_still_takes_part_in_the_checks_across_files() -> None:
    loaded, problems = check_playbook_files(
        {
            "pb/a.yaml": "match: {default: true}\n",
            "pb/b.yaml": "name: a\nmatch: {default: true}\npostmortem: {due_in: 5 days}\n",
            "pb/c.yaml": "name: Not A Name\nmatch: {services: [x]}\n",
        }
    )
    assert [format_problem(p) for p in problems] == [
        "pb/b.yaml:1: name: the playbook name `a` is already used by pb/a.yaml — give each "
        "playbook its own `name:` (without `name:`, the file name is the name)",
        "pb/b.yaml:2: match.default: a second default playbook (pb/a.yaml is the default) — "
        "keep `default: true` in one playbook only",
        "pb/b.yaml:3: postmortem.due_in: `5 days` is not a duration — write `5d`",
        "pb/c.yaml:1: name: `Not A Name` is not a playbook name — use lowercase letters, "
        "digits, `-` and `_` (without `name:`, the file name is used)",
    ]
    # The valid part of each file, marked; never the whole of a file with problems.
    assert [(one.file, one.complete) for one in loaded] == [
        ("pb/a.yaml", True),
        ("pb/b.yaml", False),
        ("pb/c.yaml", False),
    ]


# Each line of a valid playbook, and the same line with a mistake of its own.
LINES_AND_MISTAKES = [
    ("name: web", "name: Web Site"),
    ("match: {services: [web]}", "mtch: {services: [web]}"),
    ("roles:", None),
    ('  commander: {slack: ["@alice"]}', "  commander: {slack: [alice]}"),
    ('  ops: {slack: ["@bob"], ack_timeout: 5m}', '  ops: {slack: ["@bob"], ack_timeout: 5 min}'),
    ("  dba: {pagerduty: {routing_key_env: PD_KEY}}", "  dba: 5"),
    ("escalation:", None),
    ("  - {after: 5m, page: [ops]}", "  - {after: 5 mins, page: [ops]}"),
    ("  - {after: 10m, page: [dba]}", "  - {after: 10m, page: [dba, dbb]}"),
    ("  - {after: 15m, page: [commander]}", "  - {after: 1m, page: [commander]}"),
    (
        "reminders: {status_update_every: {sev1: 15m}}",
        "reminders: {status_update_every: {sev1: 15 min}}",
    ),
    ('checklist: ["Post an update"]', 'checklist: ["Post an update", ""]'),
    (
        'bookmarks: [{title: Dash, link: "https://x.example.com"}]',
        'bookmarks: [{title: Dash, link: "ftp://x"}]',
    ),
]
MISTAKES = [index for index, (_, wrong) in enumerate(LINES_AND_MISTAKES) if wrong is not None]


def _with_mistakes(chosen: Iterable[int]) -> str:
    lines = [
        wrong if index in set(chosen) and wrong is not None else right
        for index, (right, wrong) in enumerate(LINES_AND_MISTAKES)
    ]
    return "\n".join(lines) + "\n"


def _problems_with(chosen: Iterable[int]) -> list[PlaybookProblem]:
    _loaded, problems = check_playbook_files({"pb/web.yaml": _with_mistakes(chosen)})
    return problems


@settings(max_examples=60, deadline=None, database=None)
@given(st.sets(st.sampled_from(MISTAKES), min_size=2))
def test_mistakes_together_are_reported_as_each_is_alone(chosen: set[int]) -> None:
    assert _problems_with(()) == []
    alone = {problem for index in chosen for problem in _problems_with([index])}
    together = _problems_with(chosen)
    assert set(together) == alone  # nothing hidden, nothing invented
    assert len(together) == len(alone)  # each once
    assert together == sorted(together, key=lambda p: (p.line, p.column))
    assert all(p.line and p.fix for p in together)  # each with its line and a fix
