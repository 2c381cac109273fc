"""Requests exactly as Slack sends them: signed form bodies, `payload=` forms and JSON events."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

PAYLOADS = Path(__file__).resolve().parents[2] / "shared" / "slack" / "payloads-bolt-python"


def signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 signature: HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, body: str, *, content_type: str, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature(secret, ts, body),
    }


def command_body(
    text: str,
    *,
    user_id: str,
    channel_id: str,
    response_url: str,
    command: str = "/incident",
    team_id: str = "T0001",
    user_name: str = "someone",
    channel_name: str = "general",
    trigger_id: str = "1111.2222.abcdef",
) -> str:
    """A slash command form body with the fields (and order) Slack sends."""
    return urlencode(
        {
            "token": "verification_token",
            "team_id": team_id,
            "team_domain": "example",
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
    )


def interactivity_body(payload: dict[str, Any]) -> str:
    """Block actions, view submissions and shortcuts arrive as a `payload=` form field."""
    return urlencode({"payload": json.dumps(payload)})


def event_body(
    event: dict[str, Any], *, event_id: str, team_id: str = "T0001", event_time: int | None = None
) -> str:
    """An Events API `event_callback` envelope."""
    return json.dumps(
        {
            "token": "verification_token",
            "team_id": team_id,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": event_time or int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": team_id,
                    "user_id": "UBOT",
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
    )


def load_payload(name: str) -> str:
    """A literal request body from bolt-python's own tests."""
    return (PAYLOADS / name).read_text()
