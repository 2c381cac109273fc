"""A Slack Web API emulator: real HTTP, in-memory workspace, Slack's own validation rules."""

from bot.emulator.server import RecordedCall, SlackEmulator
from bot.emulator.validation import SlackRefusal, check_args, check_blocks, check_view

__all__ = [
    "RecordedCall",
    "SlackEmulator",
    "SlackRefusal",
    "check_args",
    "check_blocks",
    "check_view",
]
