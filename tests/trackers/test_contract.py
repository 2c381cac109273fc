"""One contract, every tracker: each runs against its provider's strict fake over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.core.clock import FakeClock
from bot.metrics import Metrics
from bot.trackers import (
    GitHubTracker,
    Issue,
    IssueDraft,
    IssueState,
    JiraTracker,
    Owner,
    Span,
    Tracker,
    TrackerFailed,
    marker_for,
)
from tests.trackers.fakes import FakeGitHub, FakeJira, RateLimited

START = datetime(2026, 11, 25, 18, 30, tzinfo=UTC)


@dataclass
class Case:
    """A tracker wired to its fake, and how to read that fake."""

    name: str
    fake: RateLimited
    make: Callable[..., Tracker]  # keyword overrides (token=…)
    stored: Callable[[Issue], dict[str, Any]]  # the fake's record of an issue
    body_text: Callable[[dict[str, Any]], str]
    metrics: Metrics


def draft(marker: str = "incident-bot:abc123", owner: Owner | None = None) -> IssueDraft:
    return IssueDraft(
        title="[INC-7] Add a cache hit rate alarm",
        lines=(
            (Span("Follow-up of "), Span("INC-7", "https://slack.com/app_redirect?channel=C07")),
            (Span("Checkout latency spike (SEV2) — cache misses *overloaded* the database"),),
        ),
        marker=marker,
        due=date(2026, 12, 1),
        owner=owner,
        labels=("incident", "follow-up"),
    )


BOB = Owner(slack_id="U0BOB", name="Bob Jones", handle="bob", email="bob@acme.example")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture(params=["github", "jira"])
async def case(
    request: pytest.FixtureRequest, clock: FakeClock, http: httpx.AsyncClient
) -> AsyncIterator[Case]:
    metrics = Metrics()
    if request.param == "github":
        github = FakeGitHub(now=clock.now, prefix="/api/v3")
        await github.start()

        def make_github(**over: Any) -> Tracker:
            values: dict[str, Any] = {
                "api_url": github.api_url,
                "repo": "acme/infra",
                "token": github.token,
                "http": http,
                "clock": clock,
                "metrics": metrics,
                "logins": {"@bob": "bob-gh"},
                "timeout": 2.0,
            }
            values.update(over)
            return GitHubTracker(**values)

        yield Case(
            "github",
            github,
            make_github,
            lambda issue: github.all_issues()[int(issue.key.rpartition("#")[2]) - 1],
            lambda stored: str(stored["body"]),
            metrics,
        )
        await github.stop()
    else:
        jira = FakeJira(now=clock.now)
        await jira.start()

        def make_jira(**over: Any) -> Tracker:
            values: dict[str, Any] = {
                "url": jira.base_url,
                "project": "OPS",
                "issue_type": "Task",
                "email": jira.email,
                "token": jira.api_token,
                "http": http,
                "clock": clock,
                "metrics": metrics,
                "timeout": 2.0,
            }
            values.update(over)
            return JiraTracker(**values)

        from tests.trackers.fakes import adf_text

        yield Case(
            "jira",
            jira,
            make_jira,
            lambda issue: jira.issue(issue.key),
            lambda stored: adf_text(stored["fields"]["description"]),
            metrics,
        )
        await jira.stop()


async def test_an_issue_is_filed_with_the_incident_owner_due_date_labels_and_marker(
    case: Case,
) -> None:
    tracker = case.make()
    issue = await tracker.create(draft(owner=BOB))
    assert issue.state is IssueState.OPEN and issue.id and issue.key and issue.url
    stored = case.stored(issue)
    text = case.body_text(stored)
    assert "INC-7" in text and "2026-12-01" in text and "Bob Jones" in text
    assert "not assigned" not in text  # both trackers could resolve Bob
    if case.name == "github":
        assert stored["title"] == "[INC-7] Add a cache hit rate alarm"
        assert "incident-bot:abc123" in text
        assert "[INC-7](https://slack.com/app_redirect?channel=C07)" in text
        assert "\\*overloaded\\*" in text  # people's Markdown is shown, not interpreted
        assert [a["login"] for a in stored["assignees"]] == ["bob-gh"]
        assert [x["name"] for x in stored["labels"]] == ["incident", "follow-up"]
    else:
        fields = stored["fields"]
        assert fields["summary"] == "[INC-7] Add a cache hit rate alarm"
        assert fields["duedate"] == "2026-12-01"
        assert fields["assignee"] == {"accountId": "acc-bob"}
        assert fields["labels"] == ["incident", "follow-up"]
        assert stored["properties"]["incidentBot"] == {"marker": "incident-bot:abc123"}
        link = fields["description"]["content"][0]["content"][1]
        assert link["marks"] == [
            {"type": "link", "attrs": {"href": "https://slack.com/app_redirect?channel=C07"}}
        ]
    assert f'tracker="{case.name}"' in case.metrics.render()[0].decode()


async def test_an_owner_the_tracker_cannot_resolve_is_named_in_the_body(case: Case) -> None:
    stranger = Owner(slack_id="U0EVE", name="Eve Adams", handle="eve", email="eve@else.example")
    issue = await case.make().create(draft(owner=stranger))
    stored = case.stored(issue)
    text = case.body_text(stored)
    assert "Eve Adams (@eve in Slack)" in text.replace("\\", "") and "not assigned" in text
    if case.name == "github":
        assert stored["assignees"] == []
    else:
        assert "assignee" not in stored["fields"]


async def test_a_login_github_refuses_falls_back_to_naming_the_owner(case: Case) -> None:
    if case.name != "github":
        pytest.skip("GitHub's logins map")
    tracker = case.make(logins={"@bob": "not-a-collaborator"})
    issue = await tracker.create(draft(owner=BOB))
    stored = case.stored(issue)
    assert stored["assignees"] == [] and "not assigned" in stored["body"]
    assert [r.status for r in case.fake.received if r.method == "POST"] == [422, 201]


async def test_a_lost_create_is_found_again_by_its_marker_although_search_lags(
    case: Case,
) -> None:
    tracker = case.make()
    case.fake.drop_next_create()
    marker = marker_for("lost0001")
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft(marker=marker))
    assert failed.value.retryable and failed.value.status is None
    # Someone else files issues meanwhile; the search index has not caught up with any.
    await tracker.create(draft(marker=marker_for("other")))
    found = await tracker.find(marker, since=START - timedelta(minutes=1))
    assert found is not None
    assert marker in case.body_text(case.stored(found))
    assert found.key.endswith(("#1", "-1"))
    assert await tracker.find(marker_for("never-filed"), since=START) is None


async def test_closing_not_planned_and_reopening(case: Case) -> None:
    tracker = case.make()
    issue = await tracker.create(draft())
    assert await tracker.set_state(issue, IssueState.COMPLETED) is IssueState.COMPLETED
    assert await tracker.set_state(issue, IssueState.OPEN) is IssueState.OPEN
    assert await tracker.set_state(issue, IssueState.NOT_PLANNED) is IssueState.NOT_PLANNED
    stored = case.stored(issue)
    if case.name == "github":
        assert (stored["state"], stored["state_reason"]) == ("closed", "not_planned")
    else:
        assert stored["fields"]["status"]["statusCategory"]["key"] == "done"
        assert stored["fields"]["resolution"] == {"name": "Won't Do"}
        # Chosen by the target's category: this workflow calls it "Mark complete".
        posted = [
            r.body
            for r in case.fake.received
            if r.path.endswith("/transitions") and r.method == "POST"
        ]
        assert posted[0] == {"transition": {"id": "31"}}


async def test_bad_credentials_are_a_refusal(case: Case) -> None:
    tracker = case.make(token="wrong-token-0000")
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft())
    assert (failed.value.status, failed.value.retryable) == (401, False)


async def test_a_refused_request_says_why(case: Case) -> None:
    if case.name == "github":
        tracker = case.make(repo="acme/nowhere")
        expected = (404, "Not Found")
    else:
        tracker = case.make(issue_type="Epicc")
        expected = (400, "issuetype: Specify an issue type")
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft())
    assert (failed.value.status, failed.value.retryable) == (expected[0], False)
    assert expected[1] in failed.value.reason


async def test_server_errors_and_timeouts_are_worth_another_try(case: Case) -> None:
    tracker = case.make()
    case.fake.fail_next(502)
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft())
    assert (failed.value.status, failed.value.retryable, failed.value.retry_at) == (502, True, None)
    await case.fake.stop()
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft())
    assert failed.value.retryable and failed.value.status is None


@pytest.mark.parametrize("primary", [False, True], ids=["retry-after", "ratelimit-reset"])
async def test_a_rate_limit_blocks_every_call_until_it_ends(
    case: Case, clock: FakeClock, primary: bool
) -> None:
    tracker = case.make()
    case.fake.rate_limit_next(seconds=90, primary=primary)
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft())
    assert failed.value.retryable and failed.value.retry_at == START + timedelta(seconds=90)
    sent = len(case.fake.received)
    clock.advance(timedelta(seconds=89))
    with pytest.raises(TrackerFailed) as again:
        await tracker.create(draft())
    assert again.value.retry_at == START + timedelta(seconds=90)
    assert len(case.fake.received) == sent and case.fake.early == 0  # nothing sent early
    clock.advance(timedelta(seconds=1))
    issue = await tracker.create(draft())
    assert issue.state is IssueState.OPEN and case.fake.early == 0


async def test_a_create_that_timed_out_but_went_through_is_found_again(case: Case) -> None:
    tracker = case.make(timeout=0.2)
    case.fake.slow_next_create(0.6)
    marker = marker_for("slow0001")
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft(marker=marker))
    assert failed.value.retryable and failed.value.status is None
    for _ in range(50):  # until the tracker has finished what it was doing
        if case.fake.received and len(_issues(case)) == 1:
            break
        await asyncio.sleep(0.05)
    found = await tracker.find(marker, since=START - timedelta(minutes=1))
    assert found is not None and found.key.endswith(("#1", "-1"))


def _issues(case: Case) -> list[Any]:
    fake = case.fake
    if isinstance(fake, FakeGitHub):
        return fake.all_issues()
    assert isinstance(fake, FakeJira)
    return fake.issues


async def test_a_github_secondary_limit_without_headers_waits_a_minute(
    case: Case, clock: FakeClock
) -> None:
    if case.name != "github":
        pytest.skip("GitHub's 403 secondary rate limit")
    tracker = case.make()
    message = "You have exceeded a secondary rate limit. Please wait a few minutes."
    case.fake.fail_next(403, body={"message": message})
    with pytest.raises(TrackerFailed) as failed:
        await tracker.create(draft())
    assert failed.value.retryable and failed.value.retry_at == START + timedelta(minutes=1)
    # A plain 403 (no permission) is a refusal.
    clock.advance(timedelta(minutes=1))
    case.fake.fail_next(403, body={"message": "Resource not accessible by integration"})
    with pytest.raises(TrackerFailed) as refused:
        await tracker.create(draft())
    assert not refused.value.retryable


async def test_a_lost_create_buried_under_many_newer_issues_is_still_found(case: Case) -> None:
    tracker = case.make()
    case.fake.drop_next_create()
    marker = marker_for("buried01")
    with pytest.raises(TrackerFailed):
        await tracker.create(draft(marker=marker))
    for number in range(70):
        await tracker.create(draft(marker=marker_for(f"later{number:03d}")))
    case.fake.index()  # by now the search has caught up with all of them
    found = await tracker.find(marker, since=START - timedelta(minutes=1))
    assert found is not None and found.key.endswith(("#1", "-1"))
