"""How a follow-up's tracker issue reads: pure words for Slack and the postmortem.

The states a follow-up's issue goes through (`FollowUp.issue_state`): `pending` (not sent
yet), `sent` (a create went out; its answer may have been lost), then the tracker's own
`open`, `completed` or `not_planned`, or `failed` when the tracker refused it for good.
"""

from __future__ import annotations

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
TRACKER_NAMES = {"github": "GitHub", "jira": "Jira"}
STATE_WORDS = {"open": "open", "completed": "closed", "not_planned": "closed as not planned"}


def issue_parts(
    *, tracker: str | None, state: str | None, key: str | None, error: str | None
) -> tuple[str, str | None] | None:
    """(what, state): ("acme/infra#12", "open"), ("GitHub issue pending", None); None if none."""
    if tracker is None or state is None:
        return None
    name = TRACKER_NAMES.get(tracker, tracker)
    if state in (PENDING, SENT):
        return f"{name} issue pending", None
    if state == FAILED:
        return f"{name} issue not filed: {error or 'refused'}", None
    return key or name, STATE_WORDS.get(state, state)


def issue_label(
    *, tracker: str | None, state: str | None, key: str | None, error: str | None
) -> str | None:
    """One phrase: "acme/infra#12 (open)", "Jira issue pending"; None when not filed."""
    parts = issue_parts(tracker=tracker, state=state, key=key, error=error)
    if parts is None:
        return None
    what, word = parts
    return f"{what} ({word})" if word else what
