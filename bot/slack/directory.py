"""Who is who in the workspace: users, handles and channel members, through the Web API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.grammar import UserRef
from bot.errors import UserError

CACHE_SECONDS = 300.0
CACHE_SIZE = 5000
MISS_REFRESH_SECONDS = 30.0  # a handle not in the index reads it again when older than this


class SlackDirectory:
    """Looks people up, with a small bounded cache that expires."""

    def __init__(
        self, client: AsyncWebClient, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.monotonic = monotonic  # how the cache tells its age; tests pass their own
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._handles: tuple[float, dict[str, str]] | None = None
        self._targets: dict[str, tuple[float, tuple[str, ...]]] = {}

    async def user(self, user_id: str) -> dict[str, Any] | None:
        """users.info, cached; None for a user Slack does not know."""
        cached = self._users.get(user_id)
        if cached is not None and self.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            response = await self.client.users_info(user=user_id)
            user: dict[str, Any] | None = response["user"]
        except SlackApiError as exc:
            if exc.response.get("error") not in {"user_not_found", "user_not_visible"}:
                raise
            user = None
        if len(self._users) >= CACHE_SIZE:
            self._users.pop(next(iter(self._users)))
        self._users[user_id] = (self.monotonic(), user)
        return user

    async def _handle_index(self, *, fresher_than: float = CACHE_SECONDS) -> dict[str, str]:
        if self._handles is not None and self.monotonic() - self._handles[0] < fresher_than:
            return self._handles[1]
        index: dict[str, str] = {}
        cursor: str | None = None
        while True:
            response = await self.client.users_list(limit=200, cursor=cursor)
            members: list[dict[str, Any]] = response.get("members") or []
            for member in members:
                if member.get("deleted"):
                    continue
                profile = member.get("profile", {})
                for name in (member.get("name"), profile.get("display_name")):
                    if name:
                        index.setdefault(str(name).lower(), member["id"])
            cursor = _next_cursor(response.get("response_metadata"))
            if not cursor:
                break
        self._handles = (self.monotonic(), index)
        return index

    async def resolve(self, ref: UserRef) -> str:
        """The user id behind a mention or @handle, or UserError naming who was not found."""
        if ref.id is not None:
            user = await self.user(ref.id)
            if user is None or user.get("deleted"):
                raise UserError(f"<@{ref.id}> is not an active user in this workspace.")
            return ref.id
        handle = (ref.handle or "").lstrip("@").lower()
        user_id = (await self._handle_index()).get(handle)
        if user_id is None:
            # Someone who joined (or was renamed) since the index was read: look again, but
            # not more often than MISS_REFRESH_SECONDS, so misspelt handles cost little.
            user_id = (await self._handle_index(fresher_than=MISS_REFRESH_SECONDS)).get(handle)
        if user_id is None:
            raise UserError(
                f"There is no Slack user @{handle}: mention them so Slack completes the name."
            )
        return user_id

    async def members(self, target: str) -> list[str]:
        """The user ids behind a playbook target: a user id, @handle, email or user group.

        Emails and user groups are cached like users (bounded, expiring); ids and handles go
        through the user cache and the handle index.
        """
        target = target.strip()
        cached = self._targets.get(target)
        if cached is not None and self.monotonic() - cached[0] < CACHE_SECONDS:
            return list(cached[1])
        found = await self._members(target)
        if target.startswith("S") or ("@" in target and not target.startswith("@")):
            if len(self._targets) >= CACHE_SIZE:
                self._targets.pop(next(iter(self._targets)))
            self._targets[target] = (self.monotonic(), tuple(found))
        return found

    async def _members(self, target: str) -> list[str]:
        try:
            if target.startswith("S"):
                response = await self.client.usergroups_users_list(usergroup=target)
                users: list[str] = response.get("users") or []
                return [str(u) for u in users]
            if "@" in target and not target.startswith("@"):
                response = await self.client.users_lookupByEmail(email=target)
                return [str(response["user"]["id"])]
        except SlackApiError as exc:
            if exc.response.get("error") in {
                "users_not_found",
                "no_such_subteam",
                "user_not_found",
            }:
                return []
            raise
        try:
            if target.startswith(("U", "W")):
                return [await self.resolve(UserRef(id=target))]
            return [await self.resolve(UserRef(handle=target.lstrip("@")))]
        except UserError:
            return []

    async def is_member(self, channel_id: str, user_id: str) -> bool:
        """Whether the user is in the channel (used to keep private incidents private)."""
        cursor: str | None = None
        while True:
            try:
                response = await self.client.conversations_members(
                    channel=channel_id, limit=500, cursor=cursor
                )
            except SlackApiError as exc:
                if exc.response.get("error") in {"channel_not_found", "not_in_channel"}:
                    return False
                raise
            if user_id in response.get("members", []):
                return True
            cursor = _next_cursor(response.get("response_metadata"))
            if not cursor:
                return False


def _next_cursor(metadata: dict[str, Any] | None) -> str | None:
    return str(metadata.get("next_cursor") or "") or None if metadata else None
