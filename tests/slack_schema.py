"""Check recorded Slack Web API calls against Slack's documented method schemas.

Usage in any test: `assert_all_calls_valid(emulator.calls)` or
`assert_valid_call("chat.postMessage", {"channel": "C1", "text": "hi"})`.
Schemas come from the shared reference data (`/work/shared/slack/methods`, found relative
to the checkout); without it, from the copies vendored in `bot/emulator/methods`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from bot.emulator.validation import (
    METHODS_DIR,
    SlackRefusal,
    check_args,
    check_call_rules,
    load_method_spec,
)

SHARED_METHODS_DIR = Path(__file__).resolve().parents[2] / "shared" / "slack" / "methods"


class CallLike(Protocol):
    method: str
    args: dict[str, Any]


def schema_dir() -> Path:
    """The original schemas when available, else the vendored copies."""
    return SHARED_METHODS_DIR if SHARED_METHODS_DIR.is_dir() else METHODS_DIR


def assert_valid_call(method: str, args: Mapping[str, Any]) -> None:
    """Fail with a clear message if Slack would refuse `method` called with `args`."""
    try:
        spec = load_method_spec(method, schema_dir())
    except KeyError:
        raise AssertionError(f"{method} is not a documented Slack Web API method") from None
    payload = {key: value for key, value in args.items() if key != "token"}
    try:
        check_call_rules(method, check_args(spec, payload))
    except SlackRefusal as refusal:
        details = "\n  ".join(refusal.messages) or "(no details)"
        raise AssertionError(
            f"Slack would refuse {method} with `{refusal.error}`:\n  {details}\n"
            f"args: {dict(payload)!r:.2000}"
        ) from None


def assert_all_calls_valid(calls: Iterable[CallLike]) -> None:
    """`assert_valid_call` for each recorded call (e.g. `SlackEmulator.calls`)."""
    failures = []
    for index, call in enumerate(calls):
        try:
            assert_valid_call(call.method, call.args)
        except AssertionError as exc:
            failures.append(f"call #{index}: {exc}")
    if failures:
        raise AssertionError("\n".join(failures))
