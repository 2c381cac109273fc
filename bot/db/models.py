"""The tables: what the bot records. All times are timezone-aware and stored in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from bot.core.enums import EntrySource, FollowUpKind, PageState, Severity, Status
from bot.db.types import EnumString, UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


def _when(*, nullable: bool, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(UTCDateTime(), nullable=nullable, index=index)


class IncidentBase(SQLModel):
    title: str = Field(max_length=200)
    severity: Severity = Field(sa_type=EnumString(Severity, 8), default=Severity.SEV3)
    status: Status = Field(sa_type=EnumString(Status, 16), default=Status.INVESTIGATING)
    private: bool = False
    playbook: str | None = Field(default=None, max_length=100)
    service: str | None = Field(default=None, max_length=100)


class Incident(IncidentBase, table=True):
    """An incident; people know it as INC-<number>."""

    __tablename__ = "incident"

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(sa_column=sa.Column(sa.Integer, nullable=False, unique=True))
    channel_id: str | None = Field(default=None, max_length=32, unique=True)
    channel_name: str | None = Field(default=None, max_length=80)
    card_ts: str | None = Field(default=None, max_length=32)
    card_digest: str | None = Field(default=None, max_length=64)  # what the card last showed
    topic: str | None = Field(default=None, max_length=250)  # as last set, to skip repeats
    declared_by: str = Field(max_length=32)
    declared_at: datetime = Field(sa_column=_when(nullable=False))
    started_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    resolved_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    impact: str | None = Field(default=None, sa_type=sa.Text)
    root_cause: str | None = Field(default=None, sa_type=sa.Text)
    resolution: str | None = Field(default=None, sa_type=sa.Text)
    # Bumped on every change so two concurrent writers cannot silently overwrite each other.
    version: int = Field(default=1)

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


class TimelineEntry(SQLModel, table=True):
    """One thing that happened, at the time it happened (not when someone typed it)."""

    __tablename__ = "timeline_entry"
    __table_args__ = (
        # A message pinned twice, or an event delivered twice, is one entry.
        sa.UniqueConstraint("incident_id", "source", "slack_ts", name="uq_timeline_message"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    occurred_at: datetime = Field(sa_column=_when(nullable=False, index=True))
    recorded_at: datetime = Field(sa_column=_when(nullable=False))
    kind: str = Field(max_length=32)
    text: str = Field(sa_type=sa.Text)
    author: str | None = Field(default=None, max_length=32)
    source: EntrySource = Field(sa_type=EnumString(EntrySource, 16), default=EntrySource.SYSTEM)
    slack_channel: str | None = Field(default=None, max_length=32)
    slack_ts: str | None = Field(default=None, max_length=32)
    permalink: str | None = Field(default=None, max_length=500)
    retracted_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    retracted_by: str | None = Field(default=None, max_length=32)
    # Who has a 📌 on the message now (space-separated user ids): the entry stays on the
    # timeline until the last one is taken away.
    pinned_by: str | None = Field(default=None, sa_type=sa.Text)
    # The alert group an alert's entry belongs to, as people read it (the postmortem counts
    # a storm per group and minute).
    alert_group: str | None = Field(default=None, max_length=200)

    def pinners(self) -> list[str]:
        return (self.pinned_by or "").split()


class RoleAssignment(SQLModel, table=True):
    """Who holds a role (commander, scribe, comms, …) in an incident, and since when."""

    __tablename__ = "role_assignment"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    role: str = Field(max_length=40)
    user_id: str = Field(max_length=32)
    assigned_by: str | None = Field(default=None, max_length=32)
    assigned_at: datetime = Field(sa_column=_when(nullable=False))
    ended_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))


class Page(SQLModel, table=True):
    """A page sent to a person or a pager provider, and what came of it."""

    __tablename__ = "page"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    role: str | None = Field(default=None, max_length=40)
    provider: str = Field(max_length=20)  # slack, pagerduty, opsgenie, webhook
    target: str = Field(max_length=200)  # user id, env-variable name, URL
    dedup_key: str = Field(max_length=255, index=True)
    message: str | None = Field(default=None, sa_type=sa.Text)
    tier: int = 0
    state: PageState = Field(sa_type=EnumString(PageState, 16), default=PageState.TRIGGERED)
    created_at: datetime = Field(sa_column=_when(nullable=False))
    escalate_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    acknowledged_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    acknowledged_by: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_type=sa.Text)
    # What the provider gave back (Slack "channel:ts", Opsgenie request id) to find it again.
    external_ref: str | None = Field(default=None, max_length=200)


class FollowUp(SQLModel, table=True):
    """A corrective measure or a specific task coming out of an incident."""

    __tablename__ = "follow_up"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: FollowUpKind = Field(sa_type=EnumString(FollowUpKind, 16))
    text: str = Field(sa_type=sa.Text)
    owner: str | None = Field(default=None, max_length=32)
    due: date | None = None
    created_by: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(sa_column=_when(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    removed_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # Its issue in the playbook's tracker (see bot/followups.py); all None when not filed.
    tracker: str | None = Field(default=None, max_length=16)  # github | jira
    issue_marker: str | None = Field(default=None, max_length=64, index=True)
    issue_id: str | None = Field(default=None, max_length=64, index=True)
    issue_key: str | None = Field(default=None, max_length=100)  # "acme/infra#12", "OPS-7"
    issue_url: str | None = Field(default=None, max_length=500)
    issue_state: str | None = Field(default=None, max_length=16)
    issue_error: str | None = Field(default=None, sa_type=sa.Text)


class ProcessedEvent(SQLModel, table=True):
    """A Slack event id already handled; a retried delivery finds it and does nothing."""

    __tablename__ = "processed_event"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(sa_column=_when(nullable=False))


class SideEffect(SQLModel, table=True):
    """A Slack call a committed change still owes: run after the commit, retried until done."""

    __tablename__ = "side_effect"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    kind: str = Field(max_length=40)
    # Effects of one incident run in order within their lane (Slack calls, pages, timers).
    lane: str = Field(default="slack", max_length=10, sa_column_kwargs={"server_default": "slack"})
    payload: str = Field(sa_type=sa.Text, default="{}")
    created_at: datetime = Field(sa_column=_when(nullable=False))
    due_at: datetime = Field(sa_column=_when(nullable=False, index=True))
    claimed_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    # Which process holds the claim: a dead local holder's claim is taken over at once.
    claimed_by: str | None = Field(default=None, max_length=100)
    attempts: int = 0
    done_at: datetime | None = Field(default=None, sa_column=_when(nullable=True, index=True))
    failed: bool = False
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class Counter(SQLModel, table=True):
    """A sequence shared by every process: the next incident number is `value + 1`."""

    __tablename__ = "counter"

    name: str = Field(primary_key=True, max_length=40)
    value: int


class InboxRequest(SQLModel, table=True):
    """A request acknowledged to its sender, kept until the work it asks for is done.

    Committed before the 200 goes out; whichever process finds it unfinished after its
    holder died runs it again, and the work's own transaction marks it done, so it runs once.
    """

    __tablename__ = "inbox"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20)  # "slack"
    content_type: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    received_at: datetime = Field(sa_column=_when(nullable=False))
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    attempts: int = 0
    done_at: datetime | None = Field(default=None, sa_column=_when(nullable=True, index=True))
    last_error: str | None = Field(default=None, sa_type=sa.Text)


class PinHolder(SQLModel, table=True):
    """Whether a person has a 📌 on a message, as of their latest reaction event."""

    __tablename__ = "pin_holder"

    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    slack_ts: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=32)
    present: bool
    event_at: datetime = Field(sa_column=_when(nullable=False))


class Person(SQLModel, table=True):
    """A Slack user's display name as last seen, so documents read the same offline."""

    __tablename__ = "person"

    user_id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    updated_at: datetime = Field(sa_column=_when(nullable=False))


class Lease(SQLModel, table=True):
    """Who holds a process-wide duty (running the scheduler) and until when."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=100)
    expires_at: datetime = Field(sa_column=_when(nullable=False))


# APScheduler's SQLAlchemyJobStore table, declared here so that the migrations create it and the
# drift test knows it; the job store itself builds the same table shape on its own metadata.
SCHEDULER_JOBS = sa.Table(
    "apscheduler_jobs",
    SQLModel.metadata,
    sa.Column("id", sa.Unicode(191), primary_key=True),
    sa.Column("next_run_time", sa.Float(25), index=True),
    sa.Column("job_state", sa.LargeBinary, nullable=False),
)


class AlertGroup(SQLModel, table=True):
    """Alerts one route groups together; they belong to one open incident at a time."""

    __tablename__ = "alert_group"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)  # sha256 of route and grouping labels
    label: str = Field(max_length=200)
    source: str = Field(max_length=20)
    playbook: str = Field(max_length=100)
    route: int = 0
    severity: Severity = Field(sa_type=EnumString(Severity, 8), default=Severity.SEV3)
    declare: str = Field(max_length=8, default="auto")
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    asked_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    created_at: datetime = Field(sa_column=_when(nullable=False))


class AlertRecord(SQLModel, table=True):
    """One alert (fingerprint or labels, and startsAt), however many times it was sent."""

    __tablename__ = "alert"

    id: int | None = Field(default=None, primary_key=True)
    identity: str = Field(max_length=64, unique=True)
    group_id: int = Field(foreign_key="alert_group.id", index=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    source: str = Field(max_length=20)
    name: str = Field(max_length=200)
    labels: str = Field(sa_type=sa.Text, default="{}")  # JSON
    annotations: str = Field(sa_type=sa.Text, default="{}")  # JSON
    links: str = Field(sa_type=sa.Text, default="{}")  # JSON: title -> URL
    starts_at: datetime = Field(sa_column=_when(nullable=False))
    ends_at: datetime | None = Field(default=None, sa_column=_when(nullable=True))
    received_at: datetime = Field(sa_column=_when(nullable=False))
    # Written on the incident's timeline / told in its channel.
    fired_recorded: bool = False
    resolved_recorded: bool = False
    fired_told: bool = False
    resolved_told: bool = False
