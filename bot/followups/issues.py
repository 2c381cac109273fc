"""Tasks filed as issues in the playbook's tracker, through the outbox, once each.

`FILE_ISSUE` files a task: the first attempt marks the task "sent" before calling the tracker,
so any later attempt (a retry, another process after a crash) first looks for the issue by
the marker written in it, and only files it when it is not there: an issue is filed once even
when a create's answer was lost. `SYNC_ISSUE` closes or reopens the issue to match the task.

Neither holds up the incident's Slack messages: they are queued outside the incident's order
(`incident_id=None`). A tracker that fails is tried again within half a minute (sooner
never, when it said when: Retry-After, x-ratelimit-reset), so a task is filed within a minute
of the tracker answering again; meanwhile the task shows "issue pending". A tracker that
refuses the issue outright (bad token, unknown project) leaves the task in the bot, says why
in the channel, and does not try again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import issue_status
from bot.core.enums import FollowUpKind
from bot.core.issue_status import FAILED, PENDING, SENT, TRACKER_NAMES
from bot.core.lifecycle import severity_label
from bot.core.playbooks import FollowUps
from bot.db.models import FollowUp, Incident, SideEffect
from bot.db.repo import FollowUpRepo, IncidentRepo
from bot.errors import RetryLater
from bot.outbox import EffectKind, Executor, enqueue, enqueue_post
from bot.services import Services
from bot.slack import blocks
from bot.trackers import (
    Gate,
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

log = logging.getLogger(__name__)

MAX_RETRY = timedelta(seconds=30)
LOOKBACK = timedelta(minutes=5)  # clock skew between us and the tracker
RESPONSE_URL_LIFE = timedelta(minutes=25)  # Slack honours a response_url for 30 minutes


def where(config: FollowUps) -> str:
    """`GitHub (acme/infra)`, `Jira (OPS)`."""
    if config.github is not None:
        return f"GitHub ({config.github.repo})"
    assert config.jira is not None
    return f"Jira ({config.jira.project})"


async def plan_filing(
    session: AsyncSession,
    services: Services,
    item: FollowUp,
    config: FollowUps | None,
    *,
    response_url: str | None = None,
) -> bool:
    """Inside the caller's transaction: mark the follow-up for filing; True when it will be."""
    if config is None or (item.kind is FollowUpKind.MEASURE and not config.measures):
        return False
    item.tracker = config.tracker
    item.issue_marker = marker_for(secrets.token_hex(8))
    item.issue_state = PENDING
    await session.flush()
    payload: dict[str, Any] = {"task_id": item.id}
    if response_url:
        payload["response_url"] = response_url
    await enqueue(
        session,
        kind=EffectKind.FILE_ISSUE,
        incident_id=None,
        now=services.clock.now(),
        payload=payload,
    )
    return True


async def plan_sync(session: AsyncSession, services: Services, item: FollowUp) -> None:
    """Inside the caller's transaction: the issue will follow the task's new state."""
    if item.tracker is None or item.issue_state in (None, FAILED):
        return
    await enqueue(
        session,
        kind=EffectKind.SYNC_ISSUE,
        incident_id=None,
        now=services.clock.now(),
        payload={"task_id": item.id},
    )


def wanted_state(item: FollowUp) -> IssueState:
    """What the issue should say, from the task."""
    if item.removed_at is not None:
        return IssueState.NOT_PLANNED
    if item.done_at is not None:
        return IssueState.COMPLETED
    return IssueState.OPEN


def issue_label(item: FollowUp) -> str | None:
    """How a task's issue reads in Slack, or None when it has none."""
    return issue_status.issue_label(
        tracker=item.tracker, state=item.issue_state, key=item.issue_key, error=item.issue_error
    )


class FollowUpIssues:
    """The executors of FILE_ISSUE and SYNC_ISSUE, bound to the services."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.gates: dict[tuple[str, str], Gate] = {}  # one block window per tracker site

    def executors(self) -> dict[str, Executor]:
        return {EffectKind.FILE_ISSUE: self.file_issue, EffectKind.SYNC_ISSUE: self.sync_issue}

    # -- the trackers ---------------------------------------------------------------------

    def tracker_for(self, incident: Incident, item: FollowUp) -> Tracker:
        """The tracker the incident's playbook names; TrackerFailed when it cannot be made."""
        playbook = self.services.playbook(incident.playbook)
        config = playbook.followups if playbook is not None else None
        name = item.tracker or "tracker"
        if config is None or config.tracker != item.tracker:
            reason = f"the playbook `{incident.playbook}` no longer files follow-ups in {name}"
            raise TrackerFailed(name, reason, retryable=False)
        env, services = self.services.environ, self.services
        try:
            if config.github is not None:
                github = config.github
                return GitHubTracker(
                    api_url=services.settings.GITHUB_API_URL,
                    repo=github.repo,
                    token=_secret(env, github.token_env),
                    logins=github.logins,
                    http=services.http,
                    clock=services.clock,
                    metrics=services.metrics,
                    gate=self.gates.setdefault(
                        ("github", services.settings.GITHUB_API_URL), Gate()
                    ),
                )
            assert config.jira is not None
            jira = config.jira
            return JiraTracker(
                url=jira.url,
                project=jira.project,
                issue_type=jira.issue_type,
                email=_secret(env, jira.email_env),
                token=_secret(env, jira.token_env),
                http=services.http,
                clock=services.clock,
                metrics=services.metrics,
                gate=self.gates.setdefault(("jira", jira.url), Gate()),
            )
        except ValueError as exc:
            raise TrackerFailed(name, str(exc), retryable=False) from None

    async def draft(self, incident: Incident, item: FollowUp, config: FollowUps) -> IssueDraft:
        """The issue a task becomes: the incident linked, the owner, the due date, the labels."""
        channel = (
            f"https://slack.com/app_redirect?channel={incident.channel_id}"
            if incident.channel_id
            else None
        )
        what = "measure" if item.kind is FollowUpKind.MEASURE else "task"
        sev = severity_label(incident.severity)
        if incident.private:
            # A private incident's title and channel stay in Slack, for its members.
            lines: tuple[tuple[Span, ...], ...] = (
                (Span(f"A follow-up {what} of "), Span(incident.ref, channel), Span(f" ({sev})")),
                (Span("A private incident: its details are in its Slack channel."),),
            )
        else:
            lines = (
                (
                    Span(f"A follow-up {what} of "),
                    Span(incident.ref, channel),
                    Span(f" ({sev}): {incident.title}"),
                ),
                (Span("Incident channel: "), Span(f"#{incident.channel_name}", channel))
                if channel and incident.channel_name
                else (),
            )
        lines += ((Span(f"Recorded in Slack by the incident bot; the {what}: {item.text}"),),)
        labels = config.github.labels if config.github is not None else ()
        if config.jira is not None:
            labels = config.jira.labels
        return IssueDraft(
            title=f"[{incident.ref}] {' '.join(item.text.split())}",
            lines=tuple(line for line in lines if line),
            marker=item.issue_marker or marker_for(str(item.id)),
            due=item.due,
            owner=await self._owner(item.owner),
            labels=labels,
        )

    async def _owner(self, user_id: str | None) -> Owner | None:
        if user_id is None:
            return None
        try:
            user = await self.services.directory.user(user_id)
        except (SlackClientError, OSError) as exc:
            # Slack failing too: Slack is retried by the outbox like the tracker.
            raise TrackerFailed("slack", f"users.info failed: {exc}", retryable=True) from exc
        profile = (user or {}).get("profile") or {}
        return Owner(
            slack_id=user_id,
            # Outside Slack a full name reads better than a display name.
            name=(user or {}).get("real_name") or profile.get("display_name") or None,
            handle=(user or {}).get("name") or None,
            email=profile.get("email") or None,
        )

    # -- executors ------------------------------------------------------------------------

    async def file_issue(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """File the task's issue once, then make it match the task."""
        item, incident = await self._load(int(payload["task_id"]))
        if item is None or incident is None or item.issue_id is not None:
            return
        if item.issue_state not in (PENDING, SENT):
            return
        if item.removed_at is not None and item.issue_state == PENDING:
            await self._save(item, issue_state=None)  # removed before it was ever filed
            return
        try:
            tracker = self.tracker_for(incident, item)
            issue = None
            if item.issue_state == SENT:  # an earlier create may have gone through
                issue = await tracker.find(
                    item.issue_marker or "", since=item.created_at - LOOKBACK
                )
            if issue is None and item.removed_at is not None:
                await self._save(item, issue_state=None)  # removed, and never reached it
                return
            if issue is None:
                playbook = self.services.playbook(incident.playbook)
                assert playbook is not None and playbook.followups is not None
                draft = await self.draft(incident, item, playbook.followups)
                await self._save(item, issue_state=SENT)
                issue = await tracker.create(draft)
        except TrackerFailed as failure:
            await self._failed(effect, incident, item, failure)
            return
        await self._filed(incident, item, issue, payload.get("response_url"))
        refreshed, _ = await self._load(item.id or 0)
        if refreshed is not None and wanted_state(refreshed) is not IssueState.OPEN:
            await self._sync(effect, incident, refreshed, tracker)

    async def sync_issue(self, effect: SideEffect, payload: Mapping[str, Any]) -> None:
        """Close (completed, not planned) or reopen the issue to match the task."""
        item, incident = await self._load(int(payload["task_id"]))
        if item is None or incident is None or item.issue_id is None:
            return  # not filed yet: filing brings it in line once it is
        try:
            tracker = self.tracker_for(incident, item)
        except TrackerFailed as failure:
            await self._failed(effect, incident, item, failure)
            return
        await self._sync(effect, incident, item, tracker)

    async def _sync(
        self, effect: SideEffect, incident: Incident, item: FollowUp, tracker: Tracker
    ) -> None:
        wanted = wanted_state(item)
        if item.issue_state == wanted.value:
            return
        issue = Issue(id=item.issue_id or "", key=item.issue_key or "", url=item.issue_url or "")
        try:
            state = await tracker.set_state(issue, wanted)
        except TrackerFailed as failure:
            await self._failed(effect, incident, item, failure, filing=False)
            return
        await self._save(item, issue_state=state.value)

    # -- bookkeeping ----------------------------------------------------------------------

    async def _load(self, task_id: int) -> tuple[FollowUp | None, Incident | None]:
        async with self.services.sessions() as session:
            item = await FollowUpRepo(session).by_id(task_id)
            incident = await IncidentRepo(session).by_id(item.incident_id) if item else None
        return item, incident

    async def _save(self, item: FollowUp, **values: Any) -> None:
        async with self.services.sessions() as session, session.begin():
            row = await FollowUpRepo(session).by_id(item.id or 0, for_update=True)
            assert row is not None
            for name, value in values.items():
                setattr(row, name, value)
                setattr(item, name, value)

    async def _filed(
        self, incident: Incident, item: FollowUp, issue: Issue, response_url: object
    ) -> None:
        await self._save(
            item,
            issue_id=issue.id,
            issue_key=issue.key,
            issue_url=issue.url,
            issue_state=issue.state.value,
            issue_error=None,
        )
        what = "measure" if item.kind is FollowUpKind.MEASURE else "task"
        link = f"<{issue.url}|{blocks.escape_mrkdwn(issue.key)}>" if issue.url else issue.key
        text = (
            f"{incident.ref}'s {what} _{blocks.escape_mrkdwn(blocks.truncate(item.text, 200))}_ "
            f"is filed as {link}."
        )
        fresh = self.services.clock.now() - item.created_at < RESPONSE_URL_LIFE
        if isinstance(response_url, str) and response_url and fresh:
            try:
                sent = await AsyncWebhookClient(response_url).send(
                    text=text, response_type="ephemeral", replace_original=False
                )
                if sent.status_code == 200:
                    return
            except Exception:  # the courtesy answer failed: the channel hears it instead
                log.info("could not answer through %s's response_url", incident.ref)
        async with self.services.sessions() as session, session.begin():
            await enqueue_post(
                session,
                incident_id=incident.id,
                now=self.services.clock.now(),
                text=f":ticket: {text}",
            )
        self.services.effects.kick()

    async def _failed(
        self,
        effect: SideEffect,
        incident: Incident,
        item: FollowUp,
        failure: TrackerFailed,
        *,
        filing: bool = True,
    ) -> None:
        now = self.services.clock.now()
        if failure.retryable:
            backoff = min(timedelta(seconds=2 ** min(effect.attempts, 5)), MAX_RETRY)
            raise RetryLater(
                f"{item.tracker} issue of task #{item.id}",
                failure.reason,
                # Never at once: a tracker answering `Retry-After: 0` must not spin the outbox.
                retry_at=max(failure.retry_at or now + backoff, now + timedelta(seconds=1)),
            ) from failure
        log.warning(
            "%s issue of %s task #%s refused: %s", item.tracker, incident.ref, item.id, failure
        )
        name = TRACKER_NAMES.get(item.tracker or "", item.tracker or "the tracker")
        if filing:
            await self._save(item, issue_state=FAILED, issue_error=failure.reason)
            task = blocks.escape_mrkdwn(blocks.truncate(item.text, 200))
            text = (
                f":warning: {incident.ref}'s task _{task}_ "
                f"could not be filed in {name}: {blocks.escape_mrkdwn(failure.reason)}. "
                "It stays here, in `/incident tasks` and the postmortem."
            )
        else:
            await self._save(item, issue_error=failure.reason)
            text = (
                f":warning: {name} refused to update {item.issue_key} "
                f"({blocks.escape_mrkdwn(failure.reason)}); change it there by hand."
            )
        async with self.services.sessions() as session, session.begin():
            await enqueue_post(session, incident_id=incident.id, now=now, text=text)
        self.services.effects.kick()


def _secret(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{name} is not set in the environment")
    return value
