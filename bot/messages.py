"""What the bot says to people, in one module."""

from __future__ import annotations

INTERNAL_ERROR = (
    "Something went wrong on our side and it has been logged; nothing you asked for was lost. "
    "Try again in a minute."
)
SLACK_FAILED = (
    "Slack did not accept a call the bot made; it will be retried. Try again in a minute."
)
