"""Slack customers: a slack-bolt AsyncApp in front of the conversation core.

It parses events and button presses into `Incoming`, renders each `Reply` as Block Kit in the
customer's thread (`bots.slack.render`), and meets Slack's duties: `ack()` at once with the
turn running after it (lazy listeners), retried deliveries answered once, bot messages ignored,
Block Kit limits kept, and 429s retried after `Retry-After`. HTTP Events API or Socket Mode,
chosen by settings.

In a channel each member has a conversation of their own in a thread, while the bot, once in a
thread, follows it for every member. A button runs a turn only for the member its message was
for; anyone else gets an ephemeral note.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bots.channel import BUSY_GIVE_UP_S, ConversationOrder, Handler, own_replies, run_turn
from bots.intake import Intake
from bots.ledger.factory import inbox_beside
from bots.ledger.inbox import Inbox, Pending
from bots.ledger.payloads import full_payload
from bots.ledger.store import Ledger, stored_key
from bots.slack.render import (
    ACTION_PREFIX,
    PLATFORM,
    owner_key,
    post_to_thread,
    slack_conversation_id,
)
from core.infra import logs
from core.infra.settings import Settings
from core.turn import replies
from core.turn.messages import Incoming, Reply

log = logging.getLogger(__name__)

RATE_LIMIT_RETRIES = 3
MENTION = re.compile(r"<@[A-Z0-9]+>")
HANDLED_SUBTYPES = {None, "file_share", "thread_broadcast"}  # not edits, joins, bots...


class SlackAdapter:
    """Parses events, runs turns, renders replies. Installs its listeners on the given app."""

    def __init__(
        self,
        app: AsyncApp,
        client: AsyncWebClient,
        handler: Handler,
        ledger: Ledger,
        inbox: Inbox | None = None,
        lease_s: float = Settings.model_fields["inbox_lease_s"].default,
        busy_give_up_s: float = BUSY_GIVE_UP_S,
    ):
        self.app = app
        self.client = client
        self.handler = handler
        self.ledger = ledger
        self.order = ConversationOrder()
        # Messages are kept in the inbox until answered; beside the ledger unless given.
        self.intake = Intake(
            inbox if inbox is not None else inbox_beside(ledger),
            PLATFORM, self._answer, self.order.hold, lease_s,
        )
        self.busy_give_up_s = busy_give_up_s
        self._notes: set[asyncio.Task[None]] = set()  # short notes sent after the ack
        # Each listener acks itself once the message is in the inbox (the app processes before
        # it responds), and the turn runs after, in the background (`Intake.spawn`).
        app.event("app_mention")(self.on_mention)
        app.event("message")(self.on_message)
        app.action(re.compile(re.escape(ACTION_PREFIX)))(self.on_button)

    # -- parse --------------------------------------------------------------------------------

    async def on_mention(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        if not _from_bot(event):
            await self._message(body, event)
        await ack()

    async def on_message(self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any]) -> None:
        await self._follow(body, event)
        await ack()

    async def on_button(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await self._button(body)
        await ack()

    async def _follow(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if _from_bot(event) or event.get("subtype") not in HANDLED_SUBTYPES:
            return
        if event.get("channel_type") == "im":
            await self._message(body, event)
            return
        # In channels only follow-ups in a thread the bot is in; mentions come as app_mention.
        root = event.get("thread_ts")
        if root is None or MENTION.search(event.get("text", "")):
            return
        team, channel = _team(body), event["channel"]
        key = f"{PLATFORM}:thread:{slack_conversation_id(team, channel, root)}"
        if await asyncio.to_thread(self.ledger.get, key) is not None:
            await self._message(body, event)

    async def _button(self, body: dict[str, Any]) -> None:
        if not body.get("channel") or not body.get("actions"):
            return  # a button outside a conversation (App Home, a modal): nothing to continue
        action = body["actions"][0]
        team, channel, presser = _team(body), body["channel"]["id"], body["user"]["id"]
        message, container = body.get("message") or {}, body.get("container") or {}
        posted = message.get("ts") or container["message_ts"]
        root = message.get("thread_ts") or container.get("thread_ts") or posted
        key = f"{PLATFORM}:action:{team}:{channel}:{action['action_ts']}"
        conversation = slack_conversation_id(team, channel, root)
        if not _is_im(channel):
            owner = await asyncio.to_thread(self.ledger.get, owner_key(channel, posted))
            conversation = slack_conversation_id(team, channel, root, presser)
            # No record: older than the ledger remembers, and the core says the button expired.
            if owner is not None and owner != stored_key(conversation):
                if await asyncio.to_thread(self.ledger.claim, key):
                    self._after_ack(self._refuse(channel, root, presser))
                return
        payload = await asyncio.to_thread(full_payload, self.ledger, action.get("value", ""))
        incoming = Incoming(
            conversation_id=conversation,
            user_id=f"{PLATFORM}:{team}:{presser}",
            button=payload,
            thread_id=root,
            message_id=f"action:{action['action_ts']}",
            platform=PLATFORM,
        )
        await self._take(key, incoming)

    async def _message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team, channel, ts = _team(body), event["channel"], event["ts"]
        # app_mention and message events of one message share channel+ts; retries too.
        key = f"{PLATFORM}:message:{team}:{channel}:{ts}"
        root = event.get("thread_ts") or ts
        thread = slack_conversation_id(team, channel, root)
        # The bot is in this thread now: follow-ups there need no mention, from any member.
        await asyncio.to_thread(self.ledger.put, f"{PLATFORM}:thread:{thread}", "1")
        member = None if _is_im(channel, event.get("channel_type")) else event.get("user") or None
        conversation = slack_conversation_id(team, channel, root, member)
        text = MENTION.sub("", event.get("text") or "").strip()
        if not text and event.get("files"):
            if await asyncio.to_thread(self.ledger.claim, key):  # no turn: answered once
                self._after_ack(self.send_reply(conversation, Reply(replies.TEXT_ONLY)))
            return
        incoming = Incoming(
            conversation_id=conversation,
            user_id=f"{PLATFORM}:{team}:{event.get('user', '')}",
            text=text,
            thread_id=root,
            message_id=event.get("client_msg_id") or f"{channel}:{ts}",
            platform=PLATFORM,
        )
        await self._take(key, incoming)

    # -- turn and render ----------------------------------------------------------------------

    async def _take(self, key: str, incoming: Incoming) -> None:
        """Keep the message in the inbox (before the ack), then answer it in the background;
        a repeated delivery (a retry, or the app_mention twin of a message event) is dropped."""
        pending = await self.intake.accept(key, incoming)
        if pending is None:
            logs.event(log, "slack.duplicate", conversation_id=incoming.conversation_id)
            return
        self.intake.spawn(pending)

    def _after_ack(self, note: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(note)
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _answer(self, pending: Pending) -> None:
        """Run the turn and post its replies (a failed post raises, and the message is answered
        again from the inbox: the core kept the replies it gave)."""
        incoming = pending.incoming
        turn_replies = await run_turn(self.handler, incoming, self.busy_give_up_s)
        for target, reply in own_replies(PLATFORM, incoming, turn_replies):
            await self.send_reply(target, reply)

    async def send_reply(self, conversation: str, reply: Reply) -> None:
        await post_to_thread(self.client, self.ledger, conversation, reply)

    async def _refuse(self, channel: str, thread_ts: str, presser: str) -> None:
        """Tell a member, and only them, that the button they pressed was someone else's."""
        logs.event(log, "slack.button_refused", channel=channel)
        try:
            await self.client.chat_postEphemeral(
                channel=channel, user=presser, thread_ts=thread_ts, text=replies.NOT_YOUR_BUTTON
            )
        except SlackApiError as error:
            logs.event(log, "slack.send_failed", level=logging.ERROR, error=str(error))


async def ack_at_once(ack: AsyncAck) -> None:
    """Answer Slack within its 3 seconds; the lazy listener does the work afterwards."""
    await ack()


def _team(body: dict[str, Any]) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id") or body["user"]["team_id"]
    return str(team)


def _is_im(channel: str, channel_type: str | None = None) -> bool:
    """A direct message with the bot: one person, so no member conversations (IM ids start
    with D; `app_mention` events carry no channel_type)."""
    return channel_type == "im" or channel.startswith("D")


def _from_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message"


def web_client(settings: Settings) -> AsyncWebClient:
    """The Web API client: the configured API URL, 429s retried after Retry-After."""
    if settings.slack_bot_token is None:
        raise ValueError("CONCIERGE_SLACK_BOT_TOKEN is not set (the app's xoxb- bot token)")
    return AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


def slack_adapter(
    settings: Settings, handler: Handler, ledger: Ledger, client: AsyncWebClient | None = None
) -> SlackAdapter:
    """The bolt app with the listeners installed; serve it over HTTP or Socket Mode."""
    client = client or web_client(settings)
    http = settings.slack_mode == "http"
    if http and settings.slack_signing_secret is None:
        raise ValueError("CONCIERGE_SLACK_SIGNING_SECRET is not set (HTTP mode verifies requests)")
    app = AsyncApp(
        client=client,
        process_before_response=True,  # a message is in the inbox before Slack hears "ok"
        signing_secret=settings.slack_signing_secret.get_secret_value() if http else None,  # type: ignore[union-attr]
        request_verification_enabled=http,
    )
    adapter = SlackAdapter(
        app, client, handler, ledger, lease_s=settings.inbox_lease_s,
        busy_give_up_s=settings.busy_give_up_s,
    )
    return adapter


def http_app(adapter: SlackAdapter, settings: Settings) -> web.Application:
    """The aiohttp application that receives events and interactivity on one path."""
    return adapter.app.web_app(path=settings.slack_path, port=settings.slack_port)


async def serve_socket_mode(adapter: SlackAdapter, settings: Settings) -> None:
    """Connect to Slack over Socket Mode and serve until cancelled."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    if settings.slack_app_token is None:
        raise ValueError("CONCIERGE_SLACK_APP_TOKEN is not set (an xapp- token, connections:write)")
    handler = AsyncSocketModeHandler(adapter.app, settings.slack_app_token.get_secret_value())
    try:
        await handler.start_async()  # connects, then serves until cancelled
    finally:
        await handler.close_async()


def missing_setting(settings: Settings) -> str | None:
    """What must be set before the chosen mode can start, in words; None when all is there."""
    if settings.slack_bot_token is None:
        return "Set CONCIERGE_SLACK_BOT_TOKEN (the app's xoxb- bot token)."
    if settings.slack_mode == "http" and settings.slack_signing_secret is None:
        return "Set CONCIERGE_SLACK_SIGNING_SECRET (HTTP mode verifies Slack's requests)."
    if settings.slack_mode == "socket" and settings.slack_app_token is None:
        return "Set CONCIERGE_SLACK_APP_TOKEN (an xapp- token with connections:write)."
    return None
