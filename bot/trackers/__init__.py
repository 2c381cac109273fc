"""Trackers: one interface (`base`), one module per provider (`github`, `jira`)."""

from bot.trackers.base import (
    Gate,
    Issue,
    IssueDraft,
    IssueState,
    Owner,
    Span,
    Tracker,
    TrackerFailed,
    marker_for,
)
from bot.trackers.github import GitHubTracker
from bot.trackers.jira import JiraTracker

__all__ = [
    "Gate",
    "GitHubTracker",
    "Issue",
    "IssueDraft",
    "IssueState",
    "JiraTracker",
    "Owner",
    "Span",
    "Tracker",
    "TrackerFailed",
    "marker_for",
]
