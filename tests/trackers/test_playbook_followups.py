"""`followups:` in a playbook: both trackers, and the mistakes `playbooks check` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.playbooks import PlaybookInvalid, format_problem, load_playbook
from bot.playbook_check import check_directory

HEAD = "match: {default: true}\nfollowups:\n"


def problems(text: str) -> list[str]:
    with pytest.raises(PlaybookInvalid) as caught:
        load_playbook(HEAD + text, filename="pb.yaml")
    return [format_problem(p) for p in caught.value.problems]


def test_the_design_examples_load() -> None:
    github = load_playbook(
        HEAD + "  github: {repo: acme/infra, token_env: GITHUB_TOKEN, labels: [incident], "
        'logins: {"@bob": bob-gh}}\n',
        filename="pb.yaml",
    ).followups
    assert github is not None and github.tracker == "github" and not github.measures
    assert github.github is not None and github.github.logins == {"@bob": "bob-gh"}
    jira = load_playbook(
        HEAD + '  jira: {url: "https://acme.atlassian.net/", project: OPS, issue_type: Task, '
        "email_env: JIRA_EMAIL, token_env: JIRA_API_TOKEN}\n  measures: true\n",
        filename="pb.yaml",
    ).followups
    assert jira is not None and jira.jira is not None and jira.measures
    assert jira.jira.url == "https://acme.atlassian.net"


def test_a_repo_not_written_owner_name_is_named_with_the_fix() -> None:
    assert problems('  github: {repo: "https://github.com/acme/infra.git", token_env: GH}\n') == [
        "pb.yaml:3: followups.github.repo: `https://github.com/acme/infra.git` is not a GitHub "
        "repository — write `acme/infra`"
    ]


def test_a_token_written_inline_and_a_missing_env() -> None:
    assert problems("  github: {repo: acme/infra, token: ghp_abc123}\n") == [
        "pb.yaml:3: followups.github.token: a secret written inline — secrets stay in the "
        "environment: write `token_env: GITHUB_TOKEN` and set GITHUB_TOKEN"
    ]
    assert problems('  jira: {url: "https://a.atlassian.net", project: OPS, token_env: T}\n') == [
        "pb.yaml:3: followups.jira.email_env: `email_env` is missing — add `email_env: "
        "JIRA_EMAIL`, the variable holding the Jira account's email"
    ]


def test_a_jira_url_must_be_https_unless_on_this_machine() -> None:
    assert problems(
        '  jira: {url: "http://acme.atlassian.net", project: OPS, email_env: E, token_env: T}\n'
    ) == [
        "pb.yaml:3: followups.jira.url: `http://acme.atlassian.net` is not an https address — "
        "write `https://acme.atlassian.net`"
    ]
    local = (
        HEAD + '  jira: {url: "http://127.0.0.1:8080", project: OPS, email_env: E, token_env: T}\n'
    )
    assert load_playbook(local, filename="pb.yaml").followups is not None


def test_unknown_keys_and_trackers() -> None:
    assert problems("  github: {repo: acme/infra, token_env: GH, lables: [x]}\n") == [
        "pb.yaml:3: followups.github.lables: unknown key `lables` — did you mean `labels`?"
    ]
    assert problems("  gitlab: {repo: acme/infra}\n")[0].startswith(
        "pb.yaml:3: followups.gitlab: unknown key `gitlab`"
    )
    assert problems("  measures: true\n") == [
        "pb.yaml:3: followups: `followups:` names no tracker — add `github: {repo: owner/name, "
        "token_env: GITHUB_TOKEN}` or `jira: {…}`"
    ]


async def test_playbooks_check_reports_them_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "default.yaml").write_text(HEAD + "  github: {repo: acme, token_env: GH}\n")
    found = await check_directory(tmp_path, lookup_user=None)
    assert [format_problem(p).split(": ", 1)[1] for p in found] == [
        "followups.github.repo: `acme` is not a GitHub repository — write the repository as "
        "`owner/name`, e.g. `acme/infra`"
    ]
