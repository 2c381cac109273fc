"""Paging: at declaration (`plan`), delivering pages (`delivery`), and responding to them
(`escalation`: tiers, acknowledgements, paging on demand)."""

from bot.paging.delivery import Paging
from bot.paging.plan import (
    OPSGENIE,
    PAGERDUTY,
    SLACK,
    WEBHOOK,
    declare_incident,
    plan_declaration,
)

__all__ = [
    "OPSGENIE",
    "PAGERDUTY",
    "SLACK",
    "WEBHOOK",
    "Paging",
    "declare_incident",
    "plan_declaration",
]
