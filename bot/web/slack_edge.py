"""The edge of `POST /slack/events`: the signature on the raw bytes, then a body Bolt can read.

Order matters: nothing about the body is looked at before the signature holds, so an unsigned
request is a 401 whatever it contains, and a signed one Bolt could not parse is a 400.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import ClientError, web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.services import Services
from bot.slack.shapes import Refusal
from bot.web.bodies import BadRequest, check_tree, decode_utf8, json_object

log = logging.getLogger(__name__)

# Slack refuses requests older than five minutes as replays; so do we, and as far ahead.
MAX_CLOCK_SKEW = 5 * 60
# Unix seconds, ASCII digits only: `abc`, ``, `0x10`, `1795969704.5`, `١٢٣` are no timestamp.
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"v0=[0-9a-f]{64}")


def verify_slack_signature(
    body: bytes, headers: Mapping[str, str], secret: str, now: float
) -> bool:
    """Whether Slack signed these exact bytes (v0 HMAC-SHA256) within five minutes of now.

    `headers` is looked up by the names Slack sends; aiohttp's headers ignore case.
    """
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    given = headers.get("X-Slack-Signature", "")
    if not secret or not _TIMESTAMP_RE.fullmatch(timestamp):
        return False
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
        return False
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    # Both sides ASCII before the constant-time compare (it raises TypeError on other text).
    if not _SIGNATURE_RE.fullmatch(given):
        return False
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def content_type_of(headers: Mapping[str, str]) -> str | None:
    """The media type as Bolt reads it: the header up to its first `;`, unchanged."""
    value = headers.get("Content-Type")
    return value.split(";")[0] if value else None


def parse_slack_body(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as the dict Bolt will see, or BadRequest (400) when Bolt could not read it.

    Mirrors Bolt's own `parse_body` (JSON when the type is exactly application/json or the
    body starts with `{`; else a form, whose `payload` field is JSON), so what passes here is
    what Bolt parses again. NUL characters pass: the shape check refuses them, so that a
    person who sent one is told.
    """
    text = decode_utf8(body)
    if not text:
        return {}
    if content_type == "application/json" or text.startswith("{"):
        return json_object(text, allow_nul=True)
    if "payload" in text:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        if payload is None:
            return {}
        try:
            return json_object(payload, allow_nul=True)
        except BadRequest as exc:
            raise BadRequest(f"the payload field: {exc.reason}") from None
    form = dict(parse_qsl(text, keep_blank_values=True))
    check_tree(form, allow_nul=True)
    return form


def refuse(services: Services, body: dict[str, Any], refusal: Refusal) -> web.Response:
    """Answer a signed request Slack could not have sent: 400, or 200 and a word to the person.

    Where someone is waiting, Slack shows them a slash command's ack body and a form's field
    errors; for a button or a shortcut the ack body is ignored, so they are told through the
    response_url (or by DM) right after it.
    """
    log.warning("refused a signed Slack request: %s", refusal.reason)
    if refusal.answer is None:
        return web.json_response({"error": refusal.reason}, status=400)
    if "command" in body:
        return web.json_response({"response_type": "ephemeral", "text": refusal.answer})
    if body.get("type") == "view_submission" and refusal.block is not None:
        short = f"{refusal.reason[:1].upper()}{refusal.reason[1:]}: close the form and try again."
        return web.json_response({"response_action": "errors", "errors": {refusal.block: short}})
    services.inflight.spawn(
        tell_person(services.slack, body, refusal.answer), name="slack-refusal-answer"
    )
    return web.Response(status=200)


async def tell_person(client: AsyncWebClient, body: dict[str, Any], text: str) -> None:
    """An ephemeral answer through the request's response_url, else a DM; failures logged."""
    url = body.get("response_url")
    user = body.get("user")
    user_id = user.get("id") if isinstance(user, dict) else body.get("user_id")
    try:
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            await AsyncWebhookClient(url).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        elif isinstance(user_id, str) and user_id:
            await client.chat_postMessage(channel=user_id, text=text)
    except (SlackApiError, ClientError, OSError, TimeoutError, ValueError) as exc:
        log.warning("could not tell the person their request was refused (%s)", exc)
