"""Reading request bodies from anyone on the internet: JSON objects of bounded depth, or a 400.

Every HTTP edge checks the caller first (signature, token) on the raw bytes and only then reads
the body with these, so nothing unsigned is ever parsed.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import BotError

# Slack's and the providers' payloads nest about ten levels; a hundred is generous and keeps
# every later walk of the body far from Python's recursion limit.
MAX_DEPTH = 100


class BadRequest(BotError):
    """A caller's request cannot be read: answered 400 with the reason, never a 5xx."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_utf8(body: bytes) -> str:
    """The body as text; bytes that are not UTF-8 are a 400."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None


def loads(text: str | bytes, *, allow_nul: bool = False) -> Any:
    """json.loads that answers 400 for anything it cannot read, however deep."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadRequest(f"the JSON is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are ValueErrors
        raise BadRequest(f"the body is not JSON ({exc.__class__.__name__})") from None
    check_tree(value, allow_nul=allow_nul)
    return value


def json_object(body: str | bytes, *, allow_nul: bool = False) -> dict[str, Any]:
    """A JSON object (not an array, string or number), nested at most MAX_DEPTH deep."""
    value = loads(body, allow_nul=allow_nul)
    if not isinstance(value, dict):
        raise BadRequest(f"the body is JSON but not an object (it is {_json_kind(value)})")
    return value


def check_tree(value: Any, *, allow_nul: bool = False) -> None:
    """BadRequest unless the value nests at most MAX_DEPTH deep and all its text is storable.

    Walked without recursion. Text is storable when it encodes as UTF-8 (JSON's `\\ud800`
    escapes give lone surrogates that do not) and holds no NUL (PostgreSQL refuses it in text)
    unless `allow_nul`: the caller then refuses NULs itself, with an answer to a person.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            _check_text(item, allow_nul=allow_nul)
            continue
        if isinstance(item, dict):
            children: list[Any] = [*item.keys(), *item.values()]
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > MAX_DEPTH:
            raise BadRequest(f"the JSON is nested more than {MAX_DEPTH} levels deep")
        stack.extend((child, level + 1) for child in children)


def _check_text(text: str, *, allow_nul: bool) -> None:
    if not allow_nul and "\x00" in text:
        raise BadRequest("the body holds a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest("the body holds text that is not Unicode (a lone surrogate)") from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
