"""`playbooks check`: a directory of playbooks, with every problem's file, line and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.playbook_check import (
    PlaybookInvalid,
    check_directory,
    format_problem,
    load_valid_directory,
)

ROOT = Path(__file__).resolve().parents[1]
BROKEN = Path("tests/playbooks_broken")


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # File names in problems are relative to where the command runs, as an operator sees them.
    monkeypatch.chdir(ROOT)


async def test_every_mistake_in_the_corpus_is_reported_with_file_line_and_fix() -> None:
    problems = await check_directory(BROKEN, lookup_user=None)
    assert [format_problem(p) for p in problems] == [
        "tests/playbooks_broken/bad_env_name.yaml:5: roles.ops.pagerduty.routing_key_env: "
        "not an environment variable name — write `PD_LEDGER_KEY`",
        "tests/playbooks_broken/bad_responder.yaml:10: roles.ops.opsgenie.responders[1].type: "
        "`group` is not an Opsgenie responder type — use one of team, user, escalation, "
        "schedule",
        "tests/playbooks_broken/bad_severity.yaml:3: match.min_severity: `sev5` is not a "
        "severity — use sev1, sev2, sev3 or sev4 (sev1 is the most severe)",
        "tests/playbooks_broken/bad_slack_target.yaml:8: roles.commander.slack[1]: `grace` is "
        "not a Slack target — write `@grace` if that is a handle (handles start with `@`)",
        "tests/playbooks_broken/duplicate_name_b.yaml:2: name: the playbook name `payments` is "
        "already used by tests/playbooks_broken/duplicate_name_a.yaml — give each playbook "
        "its own `name:` (without `name:`, the file name is the name)",
        "tests/playbooks_broken/duration_words.yaml:7: escalation[0].after: `5 minutes` is not "
        "a duration — write `5m`",
        "tests/playbooks_broken/empty.yaml:1: the file is empty — a playbook needs at least "
        "`match:`; start from playbooks/default.yaml",
        "tests/playbooks_broken/inline_secret.yaml:7: roles.ops.pagerduty.routing_key: a "
        "secret written inline — secrets stay in the environment: write "
        "`routing_key_env: PD_INLINE_SECRET_KEY` and set PD_INLINE_SECRET_KEY",
        "tests/playbooks_broken/key_typo.yaml:6: escalaton: unknown key `escalaton` — did you "
        "mean `escalation`?",
        "tests/playbooks_broken/tiers_out_of_order.yaml:9: escalation[1].after: `after: 5m` is "
        "not later than escalation[0] (`10m`) — tiers are paged in order and `after` counts "
        "from the start of paging, so give each tier a later `after` than the one before",
        "tests/playbooks_broken/two_defaults_b.yaml:4: match.default: a second default "
        "playbook (tests/playbooks_broken/two_defaults_a.yaml is the default) — keep "
        "`default: true` in one playbook only",
        "tests/playbooks_broken/unknown_role.yaml:9: escalation[1].page[1]: unknown role "
        "`dba` — define it under roles: or use one of commander, ops",
        "tests/playbooks_broken/yaml_syntax.yaml:4: YAML syntax error: expected ',' or '}', "
        "but got '<scalar>' (while parsing a flow mapping on line 3) — close the `{` opened "
        "on line 3",
    ]
    assert all(p.fix for p in problems)


async def test_the_shipped_playbooks_have_no_problems() -> None:
    assert await check_directory(Path("playbooks"), lookup_user=None) == []
    names = [pb.name for pb in load_valid_directory(Path("playbooks"))]
    assert names == ["checkout", "database", "default", "security"]


async def test_slack_users_that_do_not_exist_are_reported(tmp_path: Path) -> None:
    (tmp_path / "team.yaml").write_text(
        "match: {services: [web]}\n"
        'admins: ["@ghost", "S0LEADS"]\n'
        "roles:\n"
        '  commander: {slack: ["@alice", "U024BE7LH"]}\n'
        '  comms: {slack: ["@Ghost", "nobody@example.com"]}\n',
        encoding="utf-8",
    )
    asked: list[str] = []

    async def lookup_user(target: str) -> bool:
        asked.append(target)
        return target in ("@alice", "U024BE7LH")

    problems = await check_directory(tmp_path, lookup_user=lookup_user)
    where = f"{tmp_path}/team.yaml"
    fix = "check the spelling, or use the member id (profile → ⋮ → Copy member ID)"
    assert [format_problem(p) for p in problems] == [
        f"{where}:2: admins[0]: no Slack user `@ghost` in this workspace — {fix}",
        f"{where}:5: roles.comms.slack[0]: no Slack user `@Ghost` in this workspace — {fix}",
        f"{where}:5: roles.comms.slack[1]: no Slack user `nobody@example.com` in this "
        f"workspace — {fix}",
    ]
    # Each person once (handles are case-insensitive); user groups are not looked up.
    assert asked == ["@ghost", "@alice", "U024BE7LH", "nobody@example.com"]


async def test_without_a_lookup_slack_users_are_not_checked(tmp_path: Path) -> None:
    (tmp_path / "team.yml").write_text(
        "match: {services: [web]}\nadmins: ['@ghost']\n", encoding="utf-8"
    )
    assert await check_directory(tmp_path, lookup_user=None) == []


async def test_a_missing_or_empty_directory_is_one_clear_problem(tmp_path: Path) -> None:
    missing = await check_directory(tmp_path / "nope", lookup_user=None)
    assert [format_problem(p) for p in missing] == [
        f"{tmp_path}/nope: no such directory — create it with a playbook (see "
        "playbooks/default.yaml), or set PLAYBOOKS_DIR to the folder that holds your playbooks"
    ]
    (tmp_path / "README.md").write_text("not a playbook", encoding="utf-8")
    empty = await check_directory(tmp_path, lookup_user=None)
    assert [format_problem(p) for p in empty] == [
        f"{tmp_path}: no playbooks (*.yaml) in this directory — copy playbooks/default.yaml "
        "here, or set PLAYBOOKS_DIR to the right folder"
    ]


def test_load_valid_directory_refuses_with_every_problem() -> None:
    with pytest.raises(PlaybookInvalid) as caught:
        load_valid_directory(BROKEN)
    assert len(caught.value.problems) == 13
    message = str(caught.value)
    assert message.startswith("13 problems in the playbooks:\n")
    assert "tests/playbooks_broken/key_typo.yaml:6: escalaton: unknown key" in message


async def test_one_run_reports_every_problem_of_a_file_slack_users_included(
    tmp_path: Path,
) -> None:
    # No `match`, a bad duration, an unknown role in a tier, a mistyped target and a person
    # who does not exist: all in the first run, in line order, each once.
    (tmp_path / "team.yaml").write_text(
        "roles:\n"
        '  commander: {slack: ["@alice", "@ghost"]}\n'
        '  ops: {slack: [bob, "@bob"], ack_timeout: 5 minutes}\n'
        "escalation:\n"
        "  - {after: 5m, page: [opz]}\n"
        '  - {after: 10m, page: [commander], note: "wake the lead"}\n',
        encoding="utf-8",
    )
    (tmp_path / "web.yaml").write_text(
        "match: {services: [web]}\nadmins: ['@ghost']\n", encoding="utf-8"
    )
    asked: list[str] = []

    async def lookup_user(target: str) -> bool:
        asked.append(target)
        return target in ("@alice", "@bob")

    problems = await check_directory(tmp_path, lookup_user=lookup_user)
    team, web = f"{tmp_path}/team.yaml", f"{tmp_path}/web.yaml"
    nobody = "in this workspace — check the spelling, or use the member id (profile → ⋮ → Copy "
    nobody += "member ID)"
    assert [format_problem(p) for p in problems] == [
        f"{team}:1: match: `match` is missing — add `match: {{services: [...]}}`, or "
        "`match: {default: true}` for the default playbook",
        f"{team}:2: roles.commander.slack[1]: no Slack user `@ghost` {nobody}",
        f"{team}:3: roles.ops.slack[0]: `bob` is not a Slack target — write `@bob` if that is "
        "a handle (handles start with `@`)",
        f"{team}:3: roles.ops.ack_timeout: `5 minutes` is not a duration — write `5m`",
        f"{team}:5: escalation[0].page[0]: unknown role `opz` — did you mean `ops`? Otherwise "
        "define it under roles: or use one of commander, ops",
        f"{team}:6: escalation[1].note: unknown key `note` — use one of after, opsgenie, page",
        f"{web}:2: admins[0]: no Slack user `@ghost` {nobody}",
    ]
    assert asked == ["@alice", "@ghost", "@bob"]
