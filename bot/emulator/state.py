"""The emulated workspace: users, groups, conversations, messages, files, views.

Each record knows how to render itself in the shape Slack's Web API returns.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JsonObject = dict[str, Any]


@dataclass
class User:
    id: str
    name: str
    team_id: str
    real_name: str = ""
    email: str | None = None
    is_bot: bool = False
    tz: str = "America/Los_Angeles"
    deleted: bool = False
    bot_id: str | None = None

    def to_api(self) -> JsonObject:
        """The `user` object of users.info / users.list."""
        try:
            now = datetime.now(ZoneInfo(self.tz))
            offset = now.utcoffset()
            tz_offset = int(offset.total_seconds()) if offset is not None else 0
            tz_label = now.tzname() or self.tz
        except ZoneInfoNotFoundError:
            tz_offset, tz_label = 0, self.tz
        real_name = self.real_name or self.name
        profile: JsonObject = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "team": self.team_id,
            "image_48": f"https://avatars.example.invalid/{self.id}_48.png",
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.bot_id is not None:
            profile["bot_id"] = self.bot_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": self.tz,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    name: str
    team_id: str
    users: list[str] = field(default_factory=list)
    created: int = 1700000000

    def to_api(self, *, include_users: bool) -> JsonObject:
        """The `usergroup` object of usergroups.list."""
        rendered: JsonObject = {
            "id": self.id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": self.name,
            "description": "",
            "handle": self.handle,
            "is_external": False,
            "date_create": self.created,
            "date_update": self.created,
            "date_delete": 0,
            "auto_type": None,
            "created_by": "",
            "updated_by": "",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(self.users),
        }
        if include_users:
            rendered["users"] = list(self.users)
        return rendered


@dataclass
class Message:
    ts: str
    user: str
    text: str = ""
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    thread_ts: str | None = None
    edited: JsonObject | None = None
    files: list[str] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    bot_id: str | None = None
    subtype: str | None = None
    metadata: Any = None

    def to_api(self, team_id: str, replies: list[Message] | None = None) -> JsonObject:
        """The `message` object of chat.postMessage and conversations.history."""
        rendered: JsonObject = {"type": "message", "user": self.user, "text": self.text}
        if self.subtype is not None:
            rendered["subtype"] = self.subtype
        rendered["ts"] = self.ts
        rendered["team"] = team_id
        if self.bot_id is not None:
            rendered["bot_id"] = self.bot_id
            rendered["app_id"] = "A0EMULATOR"
        if self.blocks is not None:
            rendered["blocks"] = self.blocks
        if self.attachments is not None:
            rendered["attachments"] = self.attachments
        if self.thread_ts is not None:
            rendered["thread_ts"] = self.thread_ts
        if self.edited is not None:
            rendered["edited"] = self.edited
        if self.files:
            rendered["files"] = [{"id": file_id} for file_id in self.files]
        if self.reactions:
            rendered["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.metadata is not None:
            rendered["metadata"] = self.metadata
        if replies:
            rendered["thread_ts"] = self.ts
            rendered["reply_count"] = len(replies)
            rendered["reply_users"] = list(dict.fromkeys(reply.user for reply in replies))
            rendered["reply_users_count"] = len(rendered["reply_users"])
            rendered["latest_reply"] = replies[-1].ts
        return rendered


@dataclass
class Bookmark:
    id: str
    channel_id: str
    title: str
    link: str
    type: str = "link"
    emoji: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    created_by: str = ""

    def to_api(self, team_id: str) -> JsonObject:
        """The `bookmark` object of bookmarks.add / bookmarks.list."""
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "entity_id": None,
            "date_created": self.created,
            "date_updated": 0,
            "rank": "U",
            "last_updated_by_user_id": self.created_by,
            "last_updated_by_team_id": team_id,
            "shortcut_id": None,
            "app_id": None,
        }


@dataclass
class Pin:
    ts: str
    created_by: str
    created: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Channel:
    id: str
    name: str
    creator: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    im_user: str | None = None
    is_archived: bool = False
    is_general: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    topic: str = ""
    topic_set_by: str = ""
    topic_last_set: int = 0
    purpose: str = ""
    members: list[str] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def find_message(self, ts: str) -> Message | None:
        """The message (top-level or reply) with this ts."""
        return next((message for message in self.messages if message.ts == ts), None)

    def replies_to(self, ts: str) -> list[Message]:
        """Thread replies to the message `ts`, oldest first."""
        return [m for m in self.messages if m.thread_ts == ts and m.ts != ts]

    def to_api(self, *, viewer: str, team_id: str, num_members: bool = False) -> JsonObject:
        """The `conversation` object of conversations.info / create."""
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        rendered: JsonObject = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private and not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": team_id,
            "updated": self.created * 1000,
            "parent_conversation": None,
            "creator": self.creator,
            "is_member": viewer in self.members,
            "topic": {
                "value": self.topic,
                "creator": self.topic_set_by,
                "last_set": self.topic_last_set,
            },
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
        }
        if num_members:
            rendered["num_members"] = len(self.members)
        return rendered


@dataclass
class StoredFile:
    id: str
    name: str
    length: int
    user: str
    title: str = ""
    alt_txt: str | None = None
    snippet_type: str | None = None
    content: bytes | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self) -> JsonObject:
        """The `file` object of files.completeUploadExternal / files.info."""
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": "application/octet-stream",
            "filetype": self.snippet_type or "binary",
            "user": self.user,
            "size": len(self.content) if self.content is not None else self.length,
            "is_public": bool(self.channels),
            "channels": list(self.channels),
            "url_private": f"https://files.example.invalid/{self.id}/{self.name}",
            "permalink": f"https://emulated.slack.com/files/{self.user}/{self.id}/{self.name}",
        }


@dataclass
class OpenView:
    id: str
    payload: JsonObject
    hash: str
    root_view_id: str
    previous_view_id: str | None = None


@dataclass
class Ephemeral:
    channel: str
    user: str
    ts: str
    text: str
    blocks: list[Any] | None = None


@dataclass
class ScheduledMessage:
    id: str
    channel: str
    post_at: int
    text: str
    blocks: list[Any] | None = None


class IdFactory:
    """Slack-looking ids (`U…`, `C…`) and ever-increasing `ts` strings."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counter = itertools.count(1)
        self._last_ts_us = 0
        self.clock = clock  # seconds since the epoch; a demo or test may run it on its own time

    def new_id(self, prefix: str) -> str:
        """A fresh id such as `C00000007`."""
        return f"{prefix}{next(self._counter):08X}"

    def new_ts(self) -> str:
        """A unique message ts, like Slack's `seconds.microseconds`, always increasing."""
        now_us = int(self.clock() * 1_000_000)
        self._last_ts_us = max(now_us, self._last_ts_us + 1)
        seconds, micros = divmod(self._last_ts_us, 1_000_000)
        return f"{seconds}.{micros:06d}"


@dataclass
class Workspace:
    """Everything the emulated Slack knows, in memory."""

    team_id: str
    team_name: str = "Emulated Workspace"
    domain: str = "emulated"
    users: dict[str, User] = field(default_factory=dict)
    usergroups: dict[str, Usergroup] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    ims: dict[str, Channel] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    views: dict[str, OpenView] = field(default_factory=dict)
    ephemerals: list[Ephemeral] = field(default_factory=list)
    scheduled: list[ScheduledMessage] = field(default_factory=list)
    ids: IdFactory = field(default_factory=IdFactory)

    def conversation(self, channel_id: str) -> Channel | None:
        """A channel, private channel, MPIM or IM by id."""
        return self.channels.get(channel_id) or self.ims.get(channel_id)

    def channel_by_name(self, name: str) -> Channel | None:
        """A channel by name, with or without the leading `#`."""
        wanted = name.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == wanted), None)

    def user_by_email(self, email: str) -> User | None:
        """The user with this email address (case-insensitive)."""
        wanted = email.lower()
        return next((u for u in self.users.values() if u.email and u.email.lower() == wanted), None)

    def im_with(self, user_id: str) -> Channel | None:
        """The existing DM with `user_id`, if any."""
        return next((c for c in self.ims.values() if c.im_user == user_id), None)


def utc_now() -> int:
    """Seconds since the epoch."""
    return int(datetime.now(UTC).timestamp())
