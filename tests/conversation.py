"""Typing `/incident …` as a person would, and reading what that person was told."""

from __future__ import annotations

from bot.core import grammar
from tests.conftest import BotHarness


async def answers_to(
    bot: BotHarness, text: str, *, user: str, channel: str = "CGENERAL", answers: int | None = None
) -> list[str]:
    """`/incident text`: acked with an empty 200, then ephemeral answers through response_url.

    `answers` is how many there must be; None means at least one.
    """
    seen = len(bot.emulator.responses)
    reply = await bot.command(text, user=user, channel=channel)
    assert (reply.status, reply.text) == (200, ""), reply.text
    await bot.settle()
    answered = bot.emulator.responses[seen:]
    if answers is None:
        assert answered, f"no reply to `/incident {text}`"
    else:
        assert len(answered) == answers, [a.args for a in answered]
    for answer in answered:
        assert answer.ok, answer.response
        assert answer.args["response_type"] == "ephemeral"
    return [str(answer.args["text"]) for answer in answered]


async def reply_to(
    bot: BotHarness, text: str, *, user: str, channel: str = "CGENERAL", answers: int | None = 1
) -> str:
    """The first answer to `/incident text` (see answers_to)."""
    return (await answers_to(bot, text, user=user, channel=channel, answers=answers))[0]


async def refused_in_ack(bot: BotHarness, text: str, *, user: str, channel: str) -> str:
    """A parse error: answered in the ack itself, ephemeral, nothing sent to response_url."""
    seen = len(bot.emulator.responses)
    reply = await bot.command(text, user=user, channel=channel)
    assert reply.status == 200
    body = reply.json()
    assert body["response_type"] == "ephemeral"
    await bot.settle()
    assert bot.emulator.responses[seen:] == []
    first, _, rest = str(body["text"]).partition("\n\n")
    assert rest == grammar.HELP_TEXT
    return first
