"""The bot's exceptions: one root, each error builds its own message.

    BotError                  root of everything the bot raises on purpose
    ├── UserError             a person asked for something wrong; shown to them as is
    ├── ConfigError           the operator's configuration is missing or wrong
    ├── DatabaseUnavailable   the database cannot be reached or is not migrated
    ├── SideEffectFailed      a Slack or pager call failed after its retries
    ├── AlreadyHandled        another process finished the same acknowledged request first
    ├── PagerFailed           a pager provider refused a page, or kept failing through retries
    └── RetryLater            a side effect asks the outbox to run it again at a given time

Only the edges (the Slack error hook, the CLI) decide how an error is shown.
"""

from __future__ import annotations

from datetime import datetime


class BotError(Exception):
    """Root of every error the bot raises on purpose."""


class UserError(BotError):
    """Bad input from a person; the message is shown to them verbatim."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(BotError):
    """A configuration variable is missing or invalid."""

    def __init__(self, variable: str, problem: str, hint: str = "") -> None:
        text = f"{variable} {problem}"
        if hint:
            text += f" — {hint}"
        super().__init__(text)
        self.variable = variable


class DatabaseUnavailable(BotError):
    """The database cannot be reached, refused us, or is behind the migrations."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"database {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


class AlreadyHandled(BotError):
    """Another process already did the work of this request: this attempt rolls back."""

    def __init__(self, request_id: int) -> None:
        super().__init__(f"request #{request_id} was already handled")
        self.request_id = request_id


class SideEffectFailed(BotError):
    """A call to Slack or a pager failed after all its retries."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target} failed: {reason}")
        self.target = target
        self.reason = reason


class PagerFailed(BotError):
    """A pager could not deliver: refused outright, or still failing after its retries.

    `retryable` says whether sending the same request again later could succeed (rate limits,
    5xx, dropped connections); `retry_after` is the provider's Retry-After in seconds, if any.
    """

    def __init__(
        self,
        provider: str,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        answer = f"HTTP {status}" if status is not None else "no HTTP answer"
        kind = "temporary" if retryable else "permanent"
        super().__init__(f"{provider} page failed ({kind}, {answer}): {reason}")
        self.provider = provider
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


class RetryLater(BotError):
    """A side effect that cannot finish now asks to be run again at `retry_at`, not before.

    For providers whose rate limits say when to come back (Retry-After, x-ratelimit-reset):
    a request sent before then would only prolong the block.
    """

    def __init__(self, target: str, reason: str, *, retry_at: datetime) -> None:
        super().__init__(f"{target} will be retried at {retry_at.isoformat()}: {reason}")
        self.target = target
        self.reason = reason
        self.retry_at = retry_at
