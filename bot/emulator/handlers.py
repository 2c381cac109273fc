"""What each emulated Web API method does to the workspace, and what it answers.

Arguments reach a handler already checked and coerced against the method's schema;
a handler raises `SlackRefusal` with one of the method's documented error codes.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from typing import Any

from bot.emulator.state import (
    Bookmark,
    Channel,
    Ephemeral,
    JsonObject,
    Message,
    OpenView,
    Pin,
    ScheduledMessage,
    StoredFile,
    User,
    Workspace,
)
from bot.emulator.validation import (
    MAX_TOPIC,
    SlackRefusal,
    check_message_content,
    check_view_args,
    parse_json_arg,
)

Handler = Callable[[JsonObject], JsonObject]

CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
MAX_CHANNEL_NAME = 80
MAX_VIEW_STACK = 3


def _cursor_encode(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _page(items: list[Any], args: JsonObject, default_limit: int) -> tuple[list[Any], JsonObject]:
    """Slice `items` by Slack-style `cursor`/`limit`; return the page and response_metadata."""
    start = 0
    cursor = args.get("cursor")
    if cursor:
        try:
            kind, _, value = base64.b64decode(cursor).decode().partition(":")
            start = int(value)
        except ValueError as exc:
            raise SlackRefusal("invalid_cursor") from exc
        if kind != "offset" or start < 0:
            raise SlackRefusal("invalid_cursor")
    limit = int(args.get("limit") or default_limit) or default_limit
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, {"next_cursor": _cursor_encode(start + limit) if more else ""}


CONVERSATION_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})


def _split_ids(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(item).strip() for item in value if str(item).strip()]
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


class MethodHandlers:
    """One method per Web API method, acting on a `Workspace` as the bot user."""

    def __init__(
        self, workspace: Workspace, *, bot_user_id: str, bot_id: str, upload_base: Callable[[], str]
    ) -> None:
        self.ws = workspace
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self._upload_base = upload_base

    def table(self) -> dict[str, Handler]:
        """Web API method name -> handler."""
        return {
            "api.test": self.api_test,
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.update": self.chat_update,
            "chat.delete": self.chat_delete,
            "chat.getPermalink": self.chat_get_permalink,
            "chat.scheduleMessage": self.chat_schedule_message,
            "conversations.create": self.conversations_create,
            "conversations.info": self.conversations_info,
            "conversations.invite": self.conversations_invite,
            "conversations.join": self.conversations_join,
            "conversations.kick": self.conversations_kick,
            "conversations.members": self.conversations_members,
            "conversations.setTopic": self.conversations_set_topic,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.open": self.conversations_open,
            "conversations.archive": self.conversations_archive,
            "pins.add": self.pins_add,
            "pins.remove": self.pins_remove,
            "pins.list": self.pins_list,
            "bookmarks.add": self.bookmarks_add,
            "bookmarks.list": self.bookmarks_list,
            "reactions.add": self.reactions_add,
            "reactions.remove": self.reactions_remove,
            "users.info": self.users_info,
            "users.lookupByEmail": self.users_lookup_by_email,
            "users.list": self.users_list,
            "users.conversations": self.users_conversations,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "views.push": self.views_push,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.completeUploadExternal": self.files_complete_upload_external,
            "files.info": self.files_info,
        }

    # -- lookups ---------------------------------------------------------------------------

    def _conversation(self, channel_id: Any, *, by_name: bool = False) -> Channel:
        channel = self.ws.conversation(str(channel_id or ""))
        if channel is None and by_name:
            channel = self.ws.channel_by_name(str(channel_id))
            if channel is None and str(channel_id) in self.ws.users:
                channel = self._open_im(str(channel_id))
        if channel is None:
            raise SlackRefusal("channel_not_found")
        return channel

    def _writable(self, channel: Channel) -> Channel:
        """A channel the bot may post in: not archived, and a member if private."""
        if channel.is_archived:
            raise SlackRefusal("is_archived")
        if (channel.is_private or channel.is_mpim) and self.bot_user_id not in channel.members:
            raise SlackRefusal("not_in_channel")
        return channel

    def _member_of(self, channel: Channel) -> Channel:
        if self.bot_user_id not in channel.members:
            raise SlackRefusal("not_in_channel")
        return channel

    def _user(self, user_id: Any) -> User:
        user = self.ws.users.get(str(user_id or ""))
        if user is None:
            raise SlackRefusal("user_not_found")
        return user

    def _message(self, channel: Channel, ts: Any) -> Message:
        message = channel.find_message(str(ts or ""))
        if message is None:
            raise SlackRefusal("message_not_found")
        return message

    def _channel_api(self, channel: Channel, *, num_members: bool = False) -> JsonObject:
        return channel.to_api(
            viewer=self.bot_user_id, team_id=self.ws.team_id, num_members=num_members
        )

    def _message_api(self, channel: Channel, message: Message) -> JsonObject:
        replies = channel.replies_to(message.ts) if message.thread_ts in (None, message.ts) else []
        return message.to_api(self.ws.team_id, replies)

    def _open_im(self, user_id: str) -> Channel:
        existing = self.ws.im_with(user_id)
        if existing is not None:
            return existing
        im = Channel(
            id=self.ws.ids.new_id("D"),
            name=user_id,
            creator=self.bot_user_id,
            is_im=True,
            im_user=user_id,
            members=[self.bot_user_id, user_id],
        )
        self.ws.ims[im.id] = im
        return im

    # -- api / auth ------------------------------------------------------------------------

    def api_test(self, args: JsonObject) -> JsonObject:
        if args.get("error"):
            return {"ok": False, "error": args["error"], "args": args}
        return {"ok": True, "args": args}

    def auth_test(self, args: JsonObject) -> JsonObject:
        bot = self.ws.users[self.bot_user_id]
        return {
            "ok": True,
            "url": f"https://{self.ws.domain}.slack.com/",
            "team": self.ws.team_name,
            "user": bot.name,
            "team_id": self.ws.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    # -- chat ------------------------------------------------------------------------------

    def _post(self, channel: Channel, args: JsonObject) -> Message:
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            parent = channel.find_message(thread_ts)
            if parent is None:
                raise SlackRefusal("thread_not_found")
            if parent.thread_ts not in (None, parent.ts):
                thread_ts = parent.thread_ts  # Slack attaches a reply-to-a-reply to the parent
        message = Message(
            ts=self.ws.ids.new_ts(),
            user=self.bot_user_id,
            text=str(args.get("text") or args.get("markdown_text") or ""),
            blocks=parse_json_arg(args.get("blocks")),
            attachments=parse_json_arg(args.get("attachments")),
            thread_ts=thread_ts,
            bot_id=self.bot_id,
            metadata=parse_json_arg(args.get("metadata")),
        )
        channel.messages.append(message)
        return message

    def chat_post_message(self, args: JsonObject) -> JsonObject:
        channel = self._writable(self._conversation(args["channel"], by_name=True))
        check_message_content("chat.postMessage", args)
        message = self._post(channel, args)
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message.ts,
            "message": self._message_api(channel, message),
        }

    def chat_post_ephemeral(self, args: JsonObject) -> JsonObject:
        channel = self._writable(self._conversation(args["channel"], by_name=True))
        user = self._user(args["user"])
        check_message_content("chat.postEphemeral", args)
        if user.id not in channel.members:
            raise SlackRefusal("user_not_in_channel")
        ts = self.ws.ids.new_ts()
        self.ws.ephemerals.append(
            Ephemeral(
                channel=channel.id,
                user=user.id,
                ts=ts,
                text=str(args.get("text") or ""),
                blocks=parse_json_arg(args.get("blocks")),
            )
        )
        return {"ok": True, "message_ts": ts}

    def chat_update(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        message = self._message(channel, args["ts"])
        if message.user != self.bot_user_id:
            raise SlackRefusal("cant_update_message")
        if channel.is_archived:
            raise SlackRefusal("is_archived")
        check_message_content("chat.update", args)
        if "text" in args:
            message.text = str(args["text"] or "")
        if "blocks" in args:
            message.blocks = parse_json_arg(args["blocks"])
        if "attachments" in args:
            message.attachments = parse_json_arg(args["attachments"])
        message.edited = {"user": self.bot_user_id, "ts": self.ws.ids.new_ts()}
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_api(channel, message),
        }

    def chat_delete(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        message = self._message(channel, args["ts"])
        if message.user != self.bot_user_id:
            raise SlackRefusal("cant_delete_message")
        channel.messages.remove(message)
        channel.pins = [pin for pin in channel.pins if pin.ts != message.ts]
        return {"ok": True, "channel": channel.id, "ts": message.ts}

    def chat_get_permalink(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        message = self._message(channel, args["message_ts"])
        link = (
            f"https://{self.ws.domain}.slack.com/archives/{channel.id}/"
            f"p{message.ts.replace('.', '')}"
        )
        if message.thread_ts not in (None, message.ts):
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"ok": True, "channel": channel.id, "permalink": link}

    def chat_schedule_message(self, args: JsonObject) -> JsonObject:
        channel = self._writable(self._conversation(args["channel"], by_name=True))
        check_message_content("chat.scheduleMessage", args)
        post_at = int(args["post_at"])
        now = int(time.time())
        if post_at < now:
            raise SlackRefusal("time_in_past")
        if post_at > now + 120 * 86400:
            raise SlackRefusal("time_too_far")
        scheduled = ScheduledMessage(
            id=self.ws.ids.new_id("Q"),
            channel=channel.id,
            post_at=post_at,
            text=str(args.get("text") or ""),
            blocks=parse_json_arg(args.get("blocks")),
        )
        self.ws.scheduled.append(scheduled)
        return {
            "ok": True,
            "channel": channel.id,
            "scheduled_message_id": scheduled.id,
            "post_at": post_at,
            "message": {
                "type": "message",
                "text": scheduled.text,
                "user": self.bot_user_id,
                "bot_id": self.bot_id,
            },
        }

    # -- conversations ---------------------------------------------------------------------

    def conversations_create(self, args: JsonObject) -> JsonObject:
        name = str(args["name"])
        if not name:
            raise SlackRefusal("invalid_name_required")
        if len(name) > MAX_CHANNEL_NAME:
            raise SlackRefusal("invalid_name_maxlength")
        if not CHANNEL_NAME.fullmatch(name):
            raise SlackRefusal("invalid_name_specials")
        if not re.search(r"[a-z0-9]", name):
            raise SlackRefusal("invalid_name_punctuation")
        if self.ws.channel_by_name(name) is not None:
            raise SlackRefusal("name_taken")
        is_private = bool(args.get("is_private", False))
        channel = Channel(
            id=self.ws.ids.new_id("C"),
            name=name,
            creator=self.bot_user_id,
            is_private=is_private,
            members=[self.bot_user_id],
        )
        self.ws.channels[channel.id] = channel
        return {"ok": True, "channel": self._channel_api(channel)}

    def users_conversations(self, args: JsonObject) -> JsonObject:
        """The conversations a user (the bot by default) is in; others' non-public ones only
        where the bot is a member too."""
        user = str(args.get("user") or self.bot_user_id)
        if user not in self.ws.users:
            raise SlackRefusal("user_not_found")
        types = set(_split_ids(args.get("types") or "public_channel"))
        if not types or types - CONVERSATION_TYPES:
            raise SlackRefusal("invalid_types")
        limit = int(args.get("limit") or 100)
        if not 1 <= limit <= 999:
            raise SlackRefusal("invalid_limit")
        found = []
        for channel in [*self.ws.channels.values(), *self.ws.ims.values()]:
            kind = (
                "im"
                if channel.is_im
                else "mpim"
                if channel.is_mpim
                else "private_channel"
                if channel.is_private
                else "public_channel"
            )
            if kind not in types or user not in channel.members:
                continue
            if args.get("exclude_archived") and channel.is_archived:
                continue
            if kind != "public_channel" and self.bot_user_id not in channel.members:
                continue
            found.append(self._channel_api(channel))
        channels, metadata = _page(found, args, 100)
        return {"ok": True, "channels": channels, "response_metadata": metadata}

    def conversations_info(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_private and self.bot_user_id not in channel.members:
            raise SlackRefusal("channel_not_found")
        num = bool(args.get("include_num_members", False))
        return {"ok": True, "channel": self._channel_api(channel, num_members=num)}

    def conversations_invite(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_im:
            raise SlackRefusal("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackRefusal("is_archived")
        self._member_of(channel)
        user_ids = _split_ids(args["users"])
        if not user_ids:
            raise SlackRefusal("no_user")
        errors: list[JsonObject] = []
        for user_id in user_ids:
            if user_id == self.bot_user_id:
                code = "cant_invite_self"
            elif user_id not in self.ws.users:
                code = "user_not_found"
            elif user_id in channel.members:
                code = "already_in_channel"
            else:
                continue
            errors.append({"user": user_id, "ok": False, "error": code})
        if errors:
            raise SlackRefusal(errors[0]["error"], [f"{e['user']}: {e['error']}" for e in errors])
        channel.members.extend(user_ids)
        return {"ok": True, "channel": self._channel_api(channel)}

    def conversations_join(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_private or channel.is_im or channel.is_mpim:
            raise SlackRefusal("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackRefusal("is_archived")
        response: JsonObject = {"ok": True}
        if self.bot_user_id in channel.members:
            response["warning"] = "already_in_channel"
            response["response_metadata"] = {"warnings": ["already_in_channel"]}
        else:
            channel.members.append(self.bot_user_id)
        response["channel"] = self._channel_api(channel)
        return response

    def conversations_kick(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_im:
            raise SlackRefusal("method_not_supported_for_channel_type")
        if channel.is_general:
            raise SlackRefusal("cant_kick_from_general")
        user = self._user(args.get("user"))
        if user.id == self.bot_user_id:
            raise SlackRefusal("cant_kick_self")
        self._member_of(channel)
        if user.id not in channel.members:
            raise SlackRefusal("not_in_channel")
        channel.members.remove(user.id)
        return {"ok": True}

    def conversations_members(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_private and self.bot_user_id not in channel.members:
            raise SlackRefusal("channel_not_found")
        members, metadata = _page(list(channel.members), args, 100)
        return {"ok": True, "members": members, "response_metadata": metadata}

    def conversations_set_topic(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_im:
            raise SlackRefusal("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackRefusal("is_archived")
        self._member_of(channel)
        topic = str(args["topic"])
        if len(topic) > MAX_TOPIC:
            raise SlackRefusal("too_long")
        channel.topic = topic
        channel.topic_set_by = self.bot_user_id
        channel.topic_last_set = int(time.time())
        return {"ok": True, "channel": self._channel_api(channel)}

    def _readable(self, channel: Channel) -> Channel:
        if (channel.is_private or channel.is_mpim) and self.bot_user_id not in channel.members:
            raise SlackRefusal("not_in_channel")
        return channel

    def conversations_history(self, args: JsonObject) -> JsonObject:
        channel = self._readable(self._conversation(args["channel"]))
        oldest = float(args.get("oldest") or 0)
        latest = float(args["latest"]) if args.get("latest") else float("inf")
        inclusive = bool(args.get("inclusive", False))
        top_level = [
            m
            for m in channel.messages
            if m.thread_ts in (None, m.ts)
            and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        newest_first = list(reversed(top_level))
        page, metadata = _page(newest_first, args, 100)
        return {
            "ok": True,
            "messages": [self._message_api(channel, m) for m in page],
            "has_more": bool(metadata["next_cursor"]),
            "pin_count": len(channel.pins),
            "response_metadata": metadata,
        }

    def conversations_replies(self, args: JsonObject) -> JsonObject:
        channel = self._readable(self._conversation(args["channel"]))
        parent = channel.find_message(str(args["ts"]))
        if parent is None:
            raise SlackRefusal("thread_not_found")
        root_ts = parent.thread_ts or parent.ts
        root = channel.find_message(root_ts) or parent
        thread = [root, *channel.replies_to(root.ts)]
        page, metadata = _page(thread, args, 1000)
        return {
            "ok": True,
            "messages": [self._message_api(channel, m) for m in page],
            "has_more": bool(metadata["next_cursor"]),
            "response_metadata": metadata,
        }

    def conversations_open(self, args: JsonObject) -> JsonObject:
        if args.get("channel"):
            channel = self._conversation(args["channel"])
            return {"ok": True, "channel": self._channel_api(channel)}
        user_ids = _split_ids(args.get("users"))
        if not user_ids:
            raise SlackRefusal("users_list_not_supplied")
        if len(user_ids) > 8:
            raise SlackRefusal("too_many_users")
        for user_id in user_ids:
            self._user(user_id)
        others = [u for u in user_ids if u != self.bot_user_id]
        if not others:
            raise SlackRefusal("not_enough_users")
        if len(others) == 1:
            existing = self.ws.im_with(others[0])
            if existing is None and args.get("prevent_creation"):
                raise SlackRefusal("channel_not_found")
            im = self._open_im(others[0])
            response: JsonObject = {"ok": True}
            if existing is not None:
                response["no_op"] = True
                response["already_open"] = True
            full = bool(args.get("return_im", False))
            response["channel"] = self._channel_api(im) if full else {"id": im.id}
            return response
        members = sorted({self.bot_user_id, *others})
        for channel in self.ws.channels.values():
            if channel.is_mpim and sorted(channel.members) == members:
                return {"ok": True, "no_op": True, "channel": self._channel_api(channel)}
        mpim = Channel(
            id=self.ws.ids.new_id("G"),
            name="mpdm-" + "--".join(self.ws.users[m].name for m in members) + "-1",
            creator=self.bot_user_id,
            is_private=True,
            is_mpim=True,
            members=members,
        )
        self.ws.channels[mpim.id] = mpim
        return {"ok": True, "channel": self._channel_api(mpim)}

    def conversations_archive(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_im or channel.is_mpim:
            raise SlackRefusal("method_not_supported_for_channel_type")
        if channel.is_general:
            raise SlackRefusal("cant_archive_general")
        if channel.is_archived:
            raise SlackRefusal("already_archived")
        self._member_of(channel)
        channel.is_archived = True
        return {"ok": True}

    # -- pins, bookmarks, reactions --------------------------------------------------------

    def pins_add(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        self._member_of(channel)
        if not args.get("timestamp"):
            raise SlackRefusal("no_item_specified")
        message = self._message(channel, args["timestamp"])
        if any(pin.ts == message.ts for pin in channel.pins):
            raise SlackRefusal("already_pinned")
        if len(channel.pins) >= 100:
            raise SlackRefusal("too_many_pins")
        channel.pins.append(Pin(ts=message.ts, created_by=self.bot_user_id))
        return {"ok": True}

    def pins_remove(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if not args.get("timestamp"):
            raise SlackRefusal("no_item_specified")
        message = self._message(channel, args["timestamp"])
        pin = next((pin for pin in channel.pins if pin.ts == message.ts), None)
        if pin is None:
            raise SlackRefusal("no_pin")
        channel.pins.remove(pin)
        return {"ok": True}

    def pins_list(self, args: JsonObject) -> JsonObject:
        channel = self._readable(self._conversation(args["channel"]))
        items = []
        for pin in channel.pins:
            message = channel.find_message(pin.ts)
            if message is None:
                continue
            items.append(
                {
                    "type": "message",
                    "created": pin.created,
                    "created_by": pin.created_by,
                    "channel": channel.id,
                    "message": self._message_api(channel, message),
                }
            )
        return {"ok": True, "items": items}

    def bookmarks_add(self, args: JsonObject) -> JsonObject:
        if not args.get("channel_id"):
            raise SlackRefusal("invalid_arguments", ["[ERROR] missing required field: channel_id"])
        channel = self._conversation(args["channel_id"])
        if args["type"] != "link":
            raise SlackRefusal("invalid_bookmark_type")
        link = str(args.get("link") or "")
        if not re.match(r"https?://\S+$", link):
            raise SlackRefusal("invalid_link")
        if len(channel.bookmarks) >= 100:
            raise SlackRefusal("too_many_bookmarks")
        bookmark = Bookmark(
            id=self.ws.ids.new_id("Bk"),
            channel_id=channel.id,
            title=str(args["title"]),
            link=link,
            emoji=args.get("emoji"),
            created_by=self.bot_user_id,
        )
        channel.bookmarks.append(bookmark)
        return {"ok": True, "bookmark": bookmark.to_api(self.ws.team_id)}

    def bookmarks_list(self, args: JsonObject) -> JsonObject:
        if not args.get("channel_id"):
            raise SlackRefusal("invalid_arguments", ["[ERROR] missing required field: channel_id"])
        channel = self._conversation(args["channel_id"])
        return {"ok": True, "bookmarks": [b.to_api(self.ws.team_id) for b in channel.bookmarks]}

    def reactions_add(self, args: JsonObject) -> JsonObject:
        channel = self._conversation(args["channel"])
        if channel.is_archived:
            raise SlackRefusal("is_archived")
        message = self._message(channel, args["timestamp"])
        name = str(args["name"]).strip(":")
        if not re.fullmatch(r"[a-z0-9_+'-]+(::skin-tone-[2-6])?", name):
            raise SlackRefusal("invalid_name")
        users = message.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackRefusal("already_reacted")
        users.append(self.bot_user_id)
        return {"ok": True}

    def reactions_remove(self, args: JsonObject) -> JsonObject:
        if not args.get("channel") or not args.get("timestamp"):
            raise SlackRefusal("no_item_specified")
        channel = self._conversation(args["channel"])
        message = self._message(channel, args["timestamp"])
        name = str(args["name"]).strip(":")
        users = message.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise SlackRefusal("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del message.reactions[name]
        return {"ok": True}

    # -- users and groups ------------------------------------------------------------------

    def users_info(self, args: JsonObject) -> JsonObject:
        return {"ok": True, "user": self._user(args["user"]).to_api()}

    def users_lookup_by_email(self, args: JsonObject) -> JsonObject:
        user = self.ws.user_by_email(str(args["email"]))
        if user is None:
            raise SlackRefusal("users_not_found")
        return {"ok": True, "user": user.to_api()}

    def users_list(self, args: JsonObject) -> JsonObject:
        members, metadata = _page([u.to_api() for u in self.ws.users.values()], args, 1000)
        return {
            "ok": True,
            "members": members,
            "cache_ts": int(time.time()),
            "response_metadata": metadata,
        }

    def usergroups_list(self, args: JsonObject) -> JsonObject:
        include_users = bool(args.get("include_users", False))
        groups = [g.to_api(include_users=include_users) for g in self.ws.usergroups.values()]
        return {"ok": True, "usergroups": groups}

    def usergroups_users_list(self, args: JsonObject) -> JsonObject:
        group = self.ws.usergroups.get(str(args["usergroup"]))
        if group is None:
            raise SlackRefusal("no_such_subteam")
        return {"ok": True, "users": list(group.users)}

    # -- views -----------------------------------------------------------------------------

    def _checked_view(self, method: str, args: JsonObject) -> JsonObject:
        return check_view_args(method, args)

    def _store_view(
        self, payload: JsonObject, *, root: str | None, previous: str | None
    ) -> JsonObject:
        view_id = self.ws.ids.new_id("V")
        stored = OpenView(
            id=view_id,
            payload=payload,
            hash=self.ws.ids.new_ts(),
            root_view_id=root or view_id,
            previous_view_id=previous,
        )
        self.ws.views[view_id] = stored
        return self._view_api(stored)

    def _view_api(self, view: OpenView) -> JsonObject:
        rendered: JsonObject = {
            "id": view.id,
            "team_id": self.ws.team_id,
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "state": {"values": {}},
            "clear_on_close": False,
            "notify_on_close": False,
        }
        rendered.update(view.payload)
        rendered.update(
            {
                "hash": view.hash,
                "root_view_id": view.root_view_id,
                "previous_view_id": view.previous_view_id,
                "app_id": "A0EMULATOR",
                "bot_id": self.bot_id,
            }
        )
        return rendered

    def _view_by_external_id(self, external_id: str) -> OpenView | None:
        return next(
            (v for v in self.ws.views.values() if v.payload.get("external_id") == external_id),
            None,
        )

    def views_open(self, args: JsonObject) -> JsonObject:
        payload = self._checked_view("views.open", args)
        external_id = payload.get("external_id")
        if external_id and self._view_by_external_id(str(external_id)) is not None:
            raise SlackRefusal("duplicate_external_id")
        return {"ok": True, "view": self._store_view(payload, root=None, previous=None)}

    def views_push(self, args: JsonObject) -> JsonObject:
        payload = self._checked_view("views.push", args)
        if payload.get("type") != "modal":
            raise SlackRefusal("invalid_arguments", ["[ERROR] only modals can be pushed"])
        if not self.ws.views:
            raise SlackRefusal("not_found")
        top = list(self.ws.views.values())[-1]
        depth = sum(1 for v in self.ws.views.values() if v.root_view_id == top.root_view_id)
        if depth >= MAX_VIEW_STACK:
            raise SlackRefusal("push_limit_reached")
        view = self._store_view(payload, root=top.root_view_id, previous=top.id)
        return {"ok": True, "view": view}

    def views_update(self, args: JsonObject) -> JsonObject:
        payload = self._checked_view("views.update", args)
        view_id, external_id = args.get("view_id"), args.get("external_id")
        stored = (
            self.ws.views.get(str(view_id))
            if view_id
            else self._view_by_external_id(str(external_id))
        )
        if stored is None:
            raise SlackRefusal("not_found")
        if args.get("hash") and args["hash"] != stored.hash:
            raise SlackRefusal("hash_conflict")
        stored.payload = payload
        stored.hash = self.ws.ids.new_ts()
        return {"ok": True, "view": self._view_api(stored)}

    # -- files -----------------------------------------------------------------------------

    def files_get_upload_url_external(self, args: JsonObject) -> JsonObject:
        alt_txt = args.get("alt_txt")
        if isinstance(alt_txt, str) and len(alt_txt) > 1000:
            raise SlackRefusal("alt_txt_too_large")
        stored = StoredFile(
            id=self.ws.ids.new_id("F"),
            name=str(args["filename"]),
            length=int(args["length"]),
            user=self.bot_user_id,
            alt_txt=alt_txt,
            snippet_type=args.get("snippet_type"),
        )
        self.ws.files[stored.id] = stored
        return {
            "ok": True,
            "upload_url": f"{self._upload_base()}{stored.id}",
            "file_id": stored.id,
        }

    def files_complete_upload_external(self, args: JsonObject) -> JsonObject:
        items: list[JsonObject] = parse_json_arg(args["files"])
        if not items:
            raise SlackRefusal("invalid_arguments", ["[ERROR] files must not be empty"])
        stored: list[StoredFile] = []
        for item in items:
            found = self.ws.files.get(str(item.get("id")))
            if found is None or found.content is None or found.completed:
                raise SlackRefusal("file_not_found")
            stored.append(found)
        targets: list[Channel] = []
        if args.get("channel_id"):
            targets.append(self._conversation(args["channel_id"]))
        for channel_id in _split_ids(args.get("channels")):
            targets.append(self._conversation(channel_id, by_name=True))
        if len(targets) > 100:
            raise SlackRefusal("channels_limit_exceeded")
        for channel in targets:
            self._writable(channel)
        thread_ts = args.get("thread_ts") or None
        for channel in targets:
            if thread_ts is not None and channel.find_message(str(thread_ts)) is None:
                raise SlackRefusal("invalid_arguments", ["[ERROR] thread_ts not found"])
        for item, found in zip(items, stored, strict=True):
            found.title = str(item.get("title") or found.name)
            found.completed = True
        comment = str(args.get("initial_comment") or "")
        for channel in targets:
            message = Message(
                ts=self.ws.ids.new_ts(),
                user=self.bot_user_id,
                text=comment,
                thread_ts=thread_ts,
                files=[f.id for f in stored],
                bot_id=self.bot_id,
                subtype="file_share" if not comment else None,
            )
            channel.messages.append(message)
            for found in stored:
                found.channels.append(channel.id)
        return {
            "ok": True,
            "files": [{"id": f.id, "title": f.title} for f in stored],
        }

    def files_info(self, args: JsonObject) -> JsonObject:
        found = self.ws.files.get(str(args["file"]))
        if found is None or not found.completed:
            raise SlackRefusal("file_not_found")
        return {
            "ok": True,
            "file": found.to_api(),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }
