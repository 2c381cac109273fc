"""Pagers: one interface (`base`), one module per provider, all retried the same way (`retry`)."""

from bot.pagers.base import Pager, PageReceipt, PageRequest, dedup_key_for
from bot.pagers.opsgenie import OPSGENIE_PRIORITY, OpsgeniePager
from bot.pagers.pagerduty import PAGERDUTY_SEVERITY, PagerDutyPager
from bot.pagers.retry import RetryPolicy
from bot.pagers.slack_dm import SlackDMPager
from bot.pagers.webhook import WebhookPager

__all__ = [
    "OPSGENIE_PRIORITY",
    "PAGERDUTY_SEVERITY",
    "OpsgeniePager",
    "PageReceipt",
    "PageRequest",
    "Pager",
    "PagerDutyPager",
    "RetryPolicy",
    "SlackDMPager",
    "WebhookPager",
    "dedup_key_for",
]
