"""Commands lost to Socket Mode refreshes: the bot's client against slack_bolt's stock handler.

    python bench/socket_refresh.py [--rounds 20] [--commands 200] [--gap-ms 1] [--grace-ms 200]

Prints figures; asserts nothing. A fake Slack on loopback (tests/fake_socket_mode.py) sends a
steady stream of slash command envelopes; halfway through each round it sends `disconnect`
(refresh_requested) and, as Slack does, keeps delivering on the old socket for `grace-ms`
before closing it. Slack is modelled kindly: an envelope due on a socket the app has already
closed goes to the newest open one, and is lost only when none is open (or when the app drops
it unread while closing). A bare Bolt app counts what reaches its listener.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.emulator import SlackEmulator
from bot.slack.socket_mode import SocketMode
from tests.fake_socket_mode import (
    APP_TOKEN,
    FakeConnection,
    FakeSocketModeSlack,
    command_payload,
)

TOKEN = "xoxb-bench-token"


@dataclass
class Tally:
    sent: int = 0
    handled: int = 0
    acked_where_sent: int = 0
    acked_elsewhere: int = 0
    unacked: int = 0
    seconds: float = 0.0


def bare_bolt(client: AsyncWebClient, handled: list[str]) -> AsyncApp:
    async def authorize() -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None, team_id="T0001", bot_token=TOKEN, bot_user_id="UBOT"
        )

    bolt = AsyncApp(client=client, signing_secret="unused-in-socket-mode", authorize=authorize)

    @bolt.command("/incident")
    async def only_ack(ack, command):  # type: ignore[no-untyped-def]
        await ack()
        handled.append(command["text"])

    return bolt


async def deliver(
    slack: FakeSocketModeSlack, preferred: FakeConnection, text: str, owner: dict[str, int]
) -> None:
    """One command, on `preferred` unless the app closed it; then on the newest open socket."""
    payload = command_payload(
        text, user="UALICE", channel="C0001", response_url="http://127.0.0.1:9/unused"
    )
    candidates = [preferred, *reversed(slack.connections)]
    for connection in candidates:
        if connection.closed:
            continue
        envelope_id = await connection.envelope("slash_commands", payload)
        if envelope_id in connection.sent:
            owner[envelope_id] = connection.number
            return
    owner[f"lost-{text}"] = 0  # no socket open: Slack could not deliver it


async def one_round(
    slack: FakeSocketModeSlack, number: int, commands: int, gap: float, grace: float
) -> dict[str, int]:
    owner: dict[str, int] = {}
    old = await slack.next_connection(number)
    half = commands // 2
    retire_at: float | None = None
    for i in range(commands):
        if i == half:
            await old.disconnect("refresh_requested")
            retire_at = time.monotonic() + grace
        if retire_at is not None and time.monotonic() >= retire_at and not old.closed:
            await old.close()
        await deliver(slack, old, f"r{number}-{i}", owner)
        await asyncio.sleep(gap)
    if not old.closed:
        await old.close()
    await slack.next_connection(number + 1)
    return owner


async def run(kind: str, rounds: int, commands: int, gap: float, grace: float) -> Tally:
    emulator = SlackEmulator(bot_token=TOKEN)
    await emulator.start()
    slack = FakeSocketModeSlack(emulator)
    await slack.start()
    client = AsyncWebClient(base_url=slack.url)
    handled: list[str] = []
    bolt = bare_bolt(client, handled)
    owners: dict[str, int] = {}
    started = time.perf_counter()
    if kind == "bot":
        ours = SocketMode(bolt=bolt, app_token=APP_TOKEN, slack=client)
        await ours.start()
    else:
        stock = AsyncSocketModeHandler(bolt, APP_TOKEN)
        await stock.connect_async()  # type: ignore[no-untyped-call]
    try:
        for number in range(1, rounds + 1):
            owners.update(await one_round(slack, number, commands, gap, grace))
        async with asyncio.timeout(30):
            await slack.settled()
    finally:
        if kind == "bot":
            await ours.close()
        else:
            await stock.close_async()  # type: ignore[no-untyped-call]
        await slack.stop()
        await emulator.stop()
    tally = Tally(sent=len(owners), handled=len(handled), seconds=time.perf_counter() - started)
    for envelope_id, number in owners.items():
        acks = slack.acks_for(envelope_id)
        if not acks:
            tally.unacked += 1
        elif acks[0].connection == number:
            tally.acked_where_sent += 1
        else:
            tally.acked_elsewhere += 1
    return tally


async def main(rounds: int, commands: int, gap_ms: float, grace_ms: float) -> None:
    print(
        f"{rounds} refreshes, {commands} commands each ({gap_ms:g} ms apart), "
        f"old socket kept {grace_ms:g} ms after `disconnect`"
    )
    for kind, label in (("stock", "slack_bolt AsyncSocketModeHandler"), ("bot", "bot SocketMode")):
        t = await run(kind, rounds, commands, gap_ms / 1000, grace_ms / 1000)
        print(
            f"  {label:34} sent {t.sent:5}  handled {t.handled:5}  "
            f"lost {t.sent - t.handled:4} ({100 * (t.sent - t.handled) / t.sent:.2f} %)  "
            f"acked on its socket {t.acked_where_sent:5}  on another {t.acked_elsewhere:4}  "
            f"never {t.unacked:4}  [{t.seconds:.1f} s]"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=1.0)
    parser.add_argument("--grace-ms", type=float, default=200.0)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.commands, args.gap_ms, args.grace_ms))
