"""The vocabulary every layer shares."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Severity(StrEnum):
    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


class EntryKind(StrEnum):
    """What a timeline entry records."""

    DECLARED = "declared"
    NOTE = "note"
    PINNED = "pinned"
    STATUS = "status"
    SEVERITY = "severity"
    ROLE = "role"
    STARTED = "started"
    SUMMARY = "summary"  # impact, cause or resolution text set
    UPDATE = "update"
    PAGE = "page"
    ACK = "ack"
    ESCALATION = "escalation"
    JOINED = "joined"
    LEFT = "left"
    RESOLVED = "resolved"
    REOPENED = "reopened"
    FOLLOW_UP = "follow_up"
    ALERT = "alert"  # an alert fired or resolved (Alertmanager, Grafana)


class EntrySource(StrEnum):
    """Who wrote a timeline entry: the bot, a person's command, or a 📌 on a message."""

    SYSTEM = "system"
    PERSON = "person"
    PINNED_MESSAGE = "pinned_message"


class FollowUpKind(StrEnum):
    MEASURE = "measure"
    TASK = "task"


class PageState(StrEnum):
    TRIGGERED = "triggered"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    FAILED = "failed"
    RESOLVED = "resolved"
