"""Follow-ups in the team's tracker, end to end: the real bot, the Slack emulator, the fakes.

Tasks typed in Slack become issues in the fake GitHub or Jira through the outbox (on SQLite
and PostgreSQL); links and states show in the reply, `/incident tasks` and the postmortem;
completing or removing a task closes its issue; the fake's own webhook deliveries (signed as
the provider signs them) bring changes made in the tracker back, once each, echoes ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.core.clock import FakeClock
from bot.core.enums import EntryKind
from bot.core.playbooks import load_playbook
from bot.db.models import FollowUp, TimelineEntry
from bot.emulator import SlackEmulator
from bot.slack.ids import ActionId
from tests.conftest import BotHarness, make_settings, start_bot, stop_bot
from tests.conversation import answers_to
from tests.conversation import reply_to as run
from tests.test_followups import button, draft, incident, press, section
from tests.trackers.fakes import Delivery, FakeGitHub, FakeJira, sign

GITHUB_SECRET = "gh-hook-secret"
JIRA_SECRET = "jira-hook-secret"

GITHUB_PLAYBOOK = """\
name: default
match: {default: true}
followups:
  github: {repo: acme/infra, token_env: GITHUB_TOKEN, labels: [incident], logins: {"@bob": bob-gh}}
"""
JIRA_PLAYBOOK = """\
name: default
match: {default: true}
followups:
  jira: {url: "%s", project: OPS, issue_type: Task, email_env: JIRA_EMAIL,
         token_env: JIRA_API_TOKEN}
  measures: true
"""


@dataclass
class World:
    bot: BotHarness
    github: FakeGitHub
    jira: FakeJira
    clock: FakeClock
    alice: str
    bob: str
    carol: str

    async def hook(self, path: str, delivery: Delivery) -> tuple[int, dict[str, object]]:
        async with self.bot.http.post(
            self.bot.url + path, data=delivery.body, headers=delivery.headers
        ) as response:
            return response.status, await response.json()

    async def tasks(self) -> list[FollowUp]:
        async with self.bot.services.sessions() as session:
            rows = await session.execute(select(FollowUp).order_by(col(FollowUp.id)))
            return list(rows.scalars().all())

    async def timeline(self) -> list[str]:
        async with self.bot.services.sessions() as session:
            rows = await session.execute(
                select(TimelineEntry).where(TimelineEntry.kind == EntryKind.FOLLOW_UP)
            )
            return [entry.text for entry in rows.scalars()]

    def said(self) -> list[str]:
        return [str(c.args.get("text")) for c in self.bot.emulator.calls_to("chat.postMessage")]


async def _world(
    *, tracker: str, db_url: str, emulator: SlackEmulator, clock: FakeClock
) -> AsyncIterator[World]:
    github = FakeGitHub(now=clock.now, prefix="/api/v3", webhook_secret=GITHUB_SECRET)
    jira = FakeJira(now=clock.now, webhook_secret=JIRA_SECRET)
    await github.start()
    await jira.start()
    alice = emulator.add_user("alice", real_name="Alice Smith", email="alice@acme.example")
    bob = emulator.add_user("bob", real_name="Bob Jones", email="bob@acme.example")
    carol = emulator.add_user("carol", real_name="Carol White", email="carol@acme.example")
    text = GITHUB_PLAYBOOK if tracker == "github" else JIRA_PLAYBOOK % jira.base_url
    settings = make_settings(
        database_url=db_url,
        api_url=emulator.url,
        GITHUB_API_URL=github.api_url,
        GITHUB_WEBHOOK_SECRET=GITHUB_SECRET,
        JIRA_WEBHOOK_SECRET=JIRA_SECRET,
    )
    harness, runner = await start_bot(
        settings=settings,
        emulator=emulator,
        clock=clock,
        playbooks=[load_playbook(text, filename="default.yaml")],
        environ={
            "GITHUB_TOKEN": github.token,
            "JIRA_EMAIL": jira.email,
            "JIRA_API_TOKEN": jira.api_token,
        },
    )
    try:
        yield World(harness, github, jira, clock, alice, bob, carol)
    finally:
        await stop_bot(harness, runner)
        await github.stop()
        await jira.stop()


@pytest.fixture
async def gh(db_url: str, emulator: SlackEmulator, clock: FakeClock) -> AsyncIterator[World]:
    async for world in _world(tracker="github", db_url=db_url, emulator=emulator, clock=clock):
        yield world


@pytest.fixture
async def jr(db_url: str, emulator: SlackEmulator, clock: FakeClock) -> AsyncIterator[World]:
    async for world in _world(tracker="jira", db_url=db_url, emulator=emulator, clock=clock):
        yield world


def counted(exposition: str, name: str, **labels: str) -> float:
    """A counter's value in Prometheus text, whatever the order of its labels."""
    for line in exposition.splitlines():
        head, _, value = line.rpartition(" ")
        if head.startswith(name + "{") and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return 0.0


async def declare(world: World) -> str:
    await run(world.bot, "declare sev2 Checkout latency spike", user=world.alice, answers=2)
    found = await incident(world.bot, 1)
    assert found.channel_id is not None
    return found.channel_id


async def test_a_task_becomes_a_github_issue_with_its_link_everywhere_and_closes_both_ways(
    gh: World,
) -> None:
    channel = await declare(gh)
    said = await answers_to(
        gh.bot,
        "task Add a cache alarm @bob due 2026-12-01",
        user=gh.alice,
        channel=channel,
        answers=2,
    )
    assert said[0] == (
        f"Task added to INC-1, owner <@{gh.bob}>, due 2026-12-01. "
        "Its issue in GitHub (acme/infra) is pending."
    )
    assert said[1].startswith(
        "INC-1's task _Add a cache alarm_ is filed as <https://github.com/acme/infra/issues/1|acme/infra#1>"
    )
    [issue] = gh.github.all_issues()
    assert issue["title"] == "[INC-1] Add a cache alarm"
    assert [a["login"] for a in issue["assignees"]] == ["bob-gh"]
    assert [label["name"] for label in issue["labels"]] == ["incident"]
    assert "(SEV2): Checkout latency spike" in issue["body"].replace("\\", "")
    assert "**Owner:** Bob Jones \\(@bob in Slack\\)" in issue["body"]
    assert "**Due:** 2026-12-01" in issue["body"] and "app_redirect?channel=" in issue["body"]
    [task] = await gh.tasks()
    assert (task.issue_key, task.issue_state) == ("acme/infra#1", "open")

    # `/incident tasks` and the postmortem show the link and the state.
    seen = len(gh.bot.emulator.responses)
    await run(gh.bot, "tasks", user=gh.alice, channel=channel)
    listed = gh.bot.emulator.responses[seen].args["blocks"][1]["text"]["text"]
    assert "<https://github.com/acme/infra/issues/1|acme/infra#1 (open)>" in listed
    markdown = await draft(gh.bot)
    assert "[acme/infra#1](https://github.com/acme/infra/issues/1) (open)" in section(
        markdown, "### Specific tasks:"
    )

    # Completed in Slack: the issue closes as completed; GitHub's echo changes nothing.
    await press(
        gh.bot, button(ActionId.COMPLETE_TASK, task.id or 0), user=gh.alice, channel=channel
    )
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    echo = gh.github.deliveries[-1]
    assert echo.json()["action"] == "closed"
    status, body = await gh.hook("/webhooks/github", echo)
    assert (status, body["outcome"]) == (200, "unchanged")
    assert await gh.timeline() == []

    # Reopened on github.com: the task is open again, on the timeline and in the channel.
    reopened = gh.github.change_by_person(1, state="open", reason=None, by="octocat")
    status, body = await gh.hook("/webhooks/github", reopened)
    assert (status, body["outcome"]) == (200, "reopened")
    [task] = await gh.tasks()
    assert task.done_at is None and task.issue_state == "open"
    # The same delivery again (GitHub's redelivery) changes nothing.
    status, body = await gh.hook("/webhooks/github", reopened)
    assert (status, body["outcome"]) == (200, "duplicate")
    await gh.bot.settle()
    assert await gh.timeline() == [
        "Task “Add a cache alarm” reopened in GitHub (acme/infra#1) by octocat"
    ]
    assert any(
        "reopened in GitHub (<https://github.com/acme/infra/issues/1|acme/infra#1>) by octocat" in t
        for t in gh.said()
    )

    # Closed as not planned there: the task is dropped.
    dropped = gh.github.change_by_person(1, state="closed", reason="not_planned")
    status, body = await gh.hook("/webhooks/github", dropped)
    assert (status, body["outcome"]) == (200, "dropped")
    [task] = await gh.tasks()
    assert task.removed_at is not None


async def test_removing_a_task_closes_its_issue_as_not_planned(gh: World) -> None:
    channel = await declare(gh)
    await answers_to(gh.bot, "task Rotate the keys", user=gh.alice, channel=channel, answers=2)
    [task] = await gh.tasks()
    await press(gh.bot, button(ActionId.REMOVE_TASK, task.id or 0), user=gh.alice, channel=channel)
    [issue] = gh.github.all_issues()
    assert (issue["state"], issue["state_reason"]) == ("closed", "not_planned")
    status, body = await gh.hook("/webhooks/github", gh.github.deliveries[-1])
    assert (status, body["outcome"]) == (200, "unchanged")


async def test_github_down_loses_no_task_and_files_it_once_within_a_minute_of_its_return(
    gh: World,
) -> None:
    channel = await declare(gh)
    gh.github.fail_next(503, times=1000)
    said = await answers_to(
        gh.bot, "task Load test checkout", user=gh.alice, channel=channel, answers=1
    )
    assert said[0].endswith("Its issue in GitHub (acme/infra) is pending.")
    # The incident goes on meanwhile: its messages are not held up behind the tracker.
    await run(gh.bot, "note rolled back the cache change", user=gh.alice, channel=channel)
    assert any("rolled back the cache change" in text for text in gh.said())
    for _ in range(20):  # twenty minutes of outage, in steps
        gh.clock.advance(timedelta(minutes=1))
        await gh.bot.settle()
    seen = len(gh.bot.emulator.responses)
    await run(gh.bot, "tasks", user=gh.alice, channel=channel)
    assert (
        "GitHub issue pending" in gh.bot.emulator.responses[seen].args["blocks"][1]["text"]["text"]
    )
    gh.github._injected.clear()  # GitHub answers again
    gh.clock.advance(timedelta(seconds=31))
    await gh.bot.settle()
    assert len(gh.github.all_issues()) == 1
    [task] = await gh.tasks()
    assert task.issue_state == "open"


async def test_a_lost_create_answer_does_not_file_twice(gh: World) -> None:
    channel = await declare(gh)
    gh.github.drop_next_create()
    await answers_to(gh.bot, "task Add a canary", user=gh.alice, channel=channel, answers=1)
    assert len(gh.github.all_issues()) == 1  # GitHub has it; the bot never heard back
    gh.clock.advance(timedelta(seconds=5))
    await gh.bot.settle()
    assert len(gh.github.all_issues()) == 1
    [task] = await gh.tasks()
    assert (task.issue_key, task.issue_state) == ("acme/infra#1", "open")


async def test_a_secondary_rate_limit_is_waited_out_without_an_early_request(gh: World) -> None:
    channel = await declare(gh)
    gh.github.rate_limit_next(seconds=120)
    await answers_to(gh.bot, "task Add a canary", user=gh.alice, channel=channel, answers=1)
    await answers_to(gh.bot, "task Add an alarm", user=gh.alice, channel=channel, answers=1)
    for _ in range(11):
        gh.clock.advance(timedelta(seconds=10))
        await gh.bot.settle()
    assert gh.github.all_issues() == [] and gh.github.early == 0
    gh.clock.advance(timedelta(seconds=15))
    await gh.bot.settle()
    assert len(gh.github.all_issues()) == 2 and gh.github.early == 0
    metrics = gh.bot.services.metrics.render()[0].decode()
    assert counted(metrics, "tracker_calls_total", tracker="github", outcome="rate_limited") == 1


async def test_a_refused_issue_leaves_the_task_in_the_bot_and_says_why(gh: World) -> None:
    channel = await declare(gh)
    gh.bot.services.environ = {"GITHUB_TOKEN": "ghp_revoked"}
    await answers_to(gh.bot, "task Add a canary", user=gh.alice, channel=channel, answers=1)
    [task] = await gh.tasks()
    assert task.issue_state == "failed" and task.issue_error == "Bad credentials"
    assert any("could not be filed in GitHub: Bad credentials" in t for t in gh.said())
    markdown = await draft(gh.bot)
    assert "GitHub issue not filed: Bad credentials" in section(markdown, "### Specific tasks:")


async def test_the_github_webhook_answers_as_the_design_says(gh: World) -> None:
    await declare(gh)
    ping = gh.github.ping()
    assert (await gh.hook("/webhooks/github", ping))[0] == 200
    forged = Delivery({**ping.headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}, ping.body)
    assert (await gh.hook("/webhooks/github", forged))[0] == 401
    unsigned = Delivery({k: v for k, v in ping.headers.items() if "Signature" not in k}, ping.body)
    assert (await gh.hook("/webhooks/github", unsigned))[0] == 401
    garbage = b"payload=%7B%7D"
    bad = Delivery({**ping.headers, "X-Hub-Signature-256": sign(GITHUB_SECRET, garbage)}, garbage)
    status, body = await gh.hook("/webhooks/github", bad)
    assert (status, body) == (400, {"error": "the body is not JSON"})
    # An issue the bot did not file.
    gh.github.all_issues().append(
        {
            "id": 1,
            "number": 1,
            "html_url": "x",
            "title": "t",
            "body": "",
            "state": "open",
            "state_reason": None,
            "_repo": "acme/infra",
            "_updated": gh.clock.now(),
        }
    )
    foreign = gh.github.change_by_person(1, state="closed", reason="completed")
    assert await gh.hook("/webhooks/github", foreign) == (
        200,
        {"outcome": "unknown", "issue": "acme/infra#1"},
    )
    metrics = gh.bot.services.metrics.render()[0].decode()
    assert (
        counted(metrics, "webhook_requests_total", endpoint="github", outcome="unauthorized") == 2
    )


async def test_a_webhook_is_off_without_its_secret(
    sqlite_url: str, emulator: SlackEmulator, clock: FakeClock
) -> None:
    settings = make_settings(database_url=sqlite_url, api_url=emulator.url)
    harness, runner = await start_bot(settings=settings, emulator=emulator, clock=clock)
    try:
        for path in ("/webhooks/github", "/webhooks/jira"):
            body = b"{}"
            headers = {"X-Hub-Signature-256": sign("", body), "X-Hub-Signature": sign("", body)}
            async with harness.http.post(
                harness.url + path, data=body, headers=headers
            ) as response:
                assert response.status == 404
    finally:
        await stop_bot(harness, runner)


async def test_a_jira_task_and_measure_become_issues_and_come_back_when_done_there(
    jr: World,
) -> None:
    channel = await declare(jr)
    said = await answers_to(
        jr.bot,
        "task Add a cache alarm @bob due 2026-12-01",
        user=jr.alice,
        channel=channel,
        answers=2,
    )
    assert said[0].endswith("Its issue in Jira (OPS) is pending.")
    assert "is filed as <" in said[1] and "/browse/OPS-1|OPS-1>" in said[1]
    said = await answers_to(
        jr.bot, "measure Alert on cache hit rate", user=jr.alice, channel=channel, answers=1
    )
    assert said[0] == "Measure added to INC-1's postmortem. Its issue in Jira (OPS) is pending."
    await jr.bot.settle()
    first, second = jr.jira.issues
    assert first["fields"]["duedate"] == "2026-12-01"
    assert first["fields"]["assignee"] == {"accountId": "acc-bob"}
    assert first["fields"]["description"]["type"] == "doc"
    assert second["fields"]["summary"] == "[INC-1] Alert on cache hit rate"

    # Done in Jira: the task is completed; the delivery again changes nothing.
    done = jr.jira.change_by_person("OPS-1", status="Done")
    assert (await jr.hook("/webhooks/jira", done))[1]["outcome"] == "completed"
    assert (await jr.hook("/webhooks/jira", done))[1]["outcome"] == "duplicate"
    tasks = await jr.tasks()
    assert tasks[0].done_at is not None
    await jr.bot.settle()
    assert await jr.timeline() == ["Task “Add a cache alarm” completed in Jira (OPS-1) by Dana Ops"]
    # Bad signature: 401 and nothing changes.
    reopen = jr.jira.change_by_person("OPS-1", status="To Do")
    forged = Delivery(
        {**reopen.headers, "X-Hub-Signature": sign("wrong", reopen.body)}, reopen.body
    )
    assert (await jr.hook("/webhooks/jira", forged))[0] == 401
    assert (await jr.tasks())[0].done_at is not None
    assert (await jr.hook("/webhooks/jira", reopen))[1]["outcome"] == "reopened"


async def test_completing_a_jira_task_moves_its_issue_to_a_done_status(jr: World) -> None:
    channel = await declare(jr)
    await answers_to(jr.bot, "task Rotate the keys", user=jr.alice, channel=channel, answers=2)
    [task] = await jr.tasks()
    await press(
        jr.bot, button(ActionId.COMPLETE_TASK, task.id or 0), user=jr.alice, channel=channel
    )
    issue = jr.jira.issue("OPS-1")
    assert issue["fields"]["status"]["statusCategory"]["key"] == "done"
    status, body = await jr.hook("/webhooks/jira", jr.jira.deliveries[-1])
    assert (status, body["outcome"]) == (200, "unchanged")


async def test_a_lost_jira_create_is_found_although_search_lags(jr: World) -> None:
    channel = await declare(jr)
    jr.jira.drop_next_create()
    await answers_to(jr.bot, "task Add a canary", user=jr.alice, channel=channel, answers=1)
    jr.clock.advance(timedelta(seconds=5))
    await jr.bot.settle()
    assert [i["key"] for i in jr.jira.issues] == ["OPS-1"]
    assert jr.jira.indexed == set()  # the search never saw it
    [task] = await jr.tasks()
    assert task.issue_key == "OPS-1"


async def test_a_task_done_or_removed_while_github_is_down_is_filed_closed_or_not_at_all(
    gh: World,
) -> None:
    channel = await declare(gh)
    gh.github.fail_next(500, times=1000)
    await answers_to(gh.bot, "task Done already", user=gh.alice, channel=channel, answers=1)
    await answers_to(gh.bot, "task Never mind", user=gh.alice, channel=channel, answers=1)
    done, dropped = await gh.tasks()
    await press(
        gh.bot, button(ActionId.COMPLETE_TASK, done.id or 0), user=gh.alice, channel=channel
    )
    gh.github._injected.clear()
    # Removed before GitHub ever got it: nothing is filed for it.
    await press(
        gh.bot, button(ActionId.REMOVE_TASK, dropped.id or 0), user=gh.alice, channel=channel
    )
    gh.clock.advance(timedelta(seconds=31))
    await gh.bot.settle()
    [issue] = gh.github.all_issues()
    assert issue["title"] == "[INC-1] Done already"
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    done, dropped = await gh.tasks()
    assert done.issue_state == "completed" and dropped.issue_state is None
