"""Use cases: one function per thing a person or another system asks for.

Each one records first (the incident, its timeline and the Slack calls it owes, in one
transaction) and only then acts: the side-effect runner makes the Slack calls after the commit.

One module per concept: what is asked and answered (`requests`), how a use case records
(`recording`), which incident a request is about (`finding`), declaring (`declaring`), changes
through the state machine (`changes`), entries that change no state (`entries`), reading
(`reading`).
"""

from bot.usecases.changes import (
    KNOWN_ROLES,
    assign_role,
    change_severity,
    change_status,
    reset_status_reminder,
    resolve,
    set_started,
)
from bot.usecases.declaring import declare
from bot.usecases.entries import SUMMARY_FIELDS, SUMMARY_LABELS, add_note, post_update, set_summary
from bot.usecases.finding import find_incident, is_person
from bot.usecases.reading import NOISE, list_open, show_timeline
from bot.usecases.recording import locked, transaction, ts_to_datetime
from bot.usecases.requests import Asked, Declaration, Origin, Plan, Reply

__all__ = [
    "KNOWN_ROLES",
    "NOISE",
    "SUMMARY_FIELDS",
    "SUMMARY_LABELS",
    "Asked",
    "Declaration",
    "Origin",
    "Plan",
    "Reply",
    "add_note",
    "assign_role",
    "change_severity",
    "change_status",
    "declare",
    "find_incident",
    "is_person",
    "list_open",
    "locked",
    "post_update",
    "reset_status_reminder",
    "resolve",
    "set_started",
    "set_summary",
    "show_timeline",
    "transaction",
    "ts_to_datetime",
]
