"""How a task's issue reads: in `/incident tasks`, the postmortem, and the words behind them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from bot.core.enums import Severity, Status
from bot.core.issue_status import issue_label, issue_parts
from bot.core.postmortem import PostmortemFacts, TaskItem, render_postmortem
from bot.slack.blocks import TaskLine, task_list_blocks
from tests.test_blocks import assert_valid_blocks

WHEN = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)


def test_the_words_for_each_state() -> None:
    def label(state: str | None, key: str | None = None, error: str | None = None) -> str | None:
        return issue_label(tracker="github", state=state, key=key, error=error)

    assert label(None) is None
    assert issue_label(tracker=None, state="open", key="x", error=None) is None
    assert label("pending") == label("sent") == "GitHub issue pending"
    assert label("failed", error="Bad credentials") == "GitHub issue not filed: Bad credentials"
    assert label("open", "acme/infra#3") == "acme/infra#3 (open)"
    assert label("completed", "acme/infra#3") == "acme/infra#3 (closed)"
    assert issue_parts(tracker="jira", state="not_planned", key="OPS-7", error=None) == (
        "OPS-7",
        "closed as not planned",
    )


def test_the_postmortem_links_each_issue_with_its_state() -> None:
    facts = PostmortemFacts(
        ref="INC-7",
        title="Checkout latency spike",
        severity=Severity.SEV2,
        status=Status.RESOLVED,
        declared_at=WHEN,
        started_at=None,
        resolved_at=WHEN,
        impact=None,
        root_cause=None,
        resolution=None,
        commander=None,
        tasks=(
            TaskItem(
                text="Add a cache alarm",
                due=date(2026, 12, 1),
                issue="acme/infra#12",
                issue_url="https://github.com/acme/infra/issues/12",
                issue_state="open",
            ),
            TaskItem(text="Load test", issue="Jira issue pending"),
        ),
    )
    markdown = render_postmortem(facts, [], tz=ZoneInfo("UTC"), names={}, now=WHEN)
    tasks = markdown.split("### Specific tasks:\n\n", 1)[1].strip().splitlines()
    assert tasks == [
        "* Add a cache alarm — due 2026-12-01, "
        "[acme/infra#12](https://github.com/acme/infra/issues/12) (open)",
        "* Load test — Jira issue pending",
    ]


def test_tasks_list_links_the_issue() -> None:
    blocks = task_list_blocks(
        "INC-7",
        [
            TaskLine(
                id=1,
                text="Add a cache alarm",
                owner=None,
                due=None,
                done=False,
                issue="OPS-3 (open)",
                issue_url="https://acme.atlassian.net/browse/OPS-3",
            ),
            TaskLine(
                id=2, text="Load test", owner=None, due=None, done=False, issue="Jira issue pending"
            ),
        ],
    )
    assert_valid_blocks(blocks)
    assert blocks[1]["text"]["text"].endswith(
        "— <https://acme.atlassian.net/browse/OPS-3|OPS-3 (open)>"
    )
    assert blocks[3]["text"]["text"].endswith("— Jira issue pending")
