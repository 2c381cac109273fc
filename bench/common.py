"""What the benchmarks share: the bench's Slack credentials, requests signed as Slack signs
them, and the bot's real server started on a free port as `serve` starts it."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from aiohttp import web

from bot.services import Services
from bot.wiring import build_web, settle_memory

TOKEN = "xoxb-bench-token"
SECRET = "bench-signing-secret-0123456789"


def signed(body: str) -> dict[str, str]:
    """Headers for a form body, signed with SECRET as Slack signs its requests."""
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
    }


def command(text: str, *, user: str, channel: str, response_url: str) -> str:
    """The form body of `/incident <text>` as Slack sends it."""
    return urlencode(
        {
            "command": "/incident",
            "text": text,
            "user_id": user,
            "channel_id": channel,
            "team_id": "T0001",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    )


async def serve_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free local port; the runner and the base URL."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def start_bot(services: Services) -> tuple[web.AppRunner, str]:
    """The bot's server and its side-effect runner, started as `serve` starts them."""
    app, _ = build_web(services)
    runner, base = await serve_app(app)
    services.effects.start()
    settle_memory()
    return runner, base
