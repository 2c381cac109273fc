"""Slack callback, action and block ids, in one place."""

from __future__ import annotations

from enum import StrEnum


class CommandName(StrEnum):
    INCIDENT = "/incident"


class ActionId(StrEnum):
    """Interactive elements on the bot's messages."""

    STATUS_SELECT = "incident-status-select"
    SEVERITY_SELECT = "incident-severity-select"
    ACKNOWLEDGE_PAGE = "page-acknowledge"
    ESCALATE_PAGE = "page-escalate"
    SNOOZE_REMINDER = "reminder-snooze"
    COMPLETE_TASK = "task-complete"
    REMOVE_TASK = "task-remove"
    DECLARE_FROM_ALERT = "alert-declare"  # on a "Declare incident?" prompt
    RESOLVE_FROM_ALERTS = "alert-resolve"  # once every alert of an incident has resolved


class CallbackId(StrEnum):
    """Views and shortcuts."""

    DECLARE_MODAL = "declare-incident-modal"
    DECLARE_SHORTCUT = "declare-incident-from-message"  # message shortcut, as in manifest.yaml


class BlockId(StrEnum):
    """Input blocks of the declare modal.

    Slack keys `view.state.values` and a `response_action: errors` reply by block id, so these
    are also the keys of `validation_errors`. Each input's action_id equals its block id.
    """

    TITLE = "title"
    SEVERITY = "severity"
    SERVICE = "service"
    IMPACT = "impact"
    PRIVATE = "private"
