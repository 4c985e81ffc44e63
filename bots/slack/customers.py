"""Slack adapter: a slack-bolt AsyncApp in front of the conversation core.

It parses events and button presses into `Incoming`, renders each `Reply` as Block Kit in the
customer's thread, and meets Slack's duties: `ack()` at once with the turn running after it
(lazy listeners), retried deliveries answered once, bot messages ignored, Block Kit limits kept,
and 429s retried after `Retry-After`. HTTP Events API or Socket Mode, chosen by settings.
Run it as a module: `python -m bots.slack.customers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bots.layout import rows, split_text
from bots.ledger.store import Ledger, fits, full_payload, open_ledger, short_payloads
from bots.channel import ConversationOrder, Handler, run_turn
from core.infra import logs
from core.infra.health import serve as serve_health
from core.turn.messages import Incoming, Reply
from core.infra.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = "slack"
SECTION_CHARS = 3000  # text of one section block
BLOCKS_PER_MESSAGE = 50
BUTTONS_PER_ACTIONS = 5  # Slack allows 25; five keep a row readable
BUTTON_LABEL_CHARS = 75
BUTTON_VALUE_CHARS = 2000
ACTION_PREFIX = "concierge.button."
RATE_LIMIT_RETRIES = 3
TEXT_ONLY = "Sorry, I can only read text for now. Please type your question."

MENTION = re.compile(r"<@[A-Z0-9]+>")
HANDLED_SUBTYPES = {None, "file_share", "thread_broadcast"}  # not edits, joins, bots...


def conversation_id(team: str, channel: str, thread_ts: str) -> str:
    """`slack:<team>:<channel>:<thread root ts>`: one conversation per thread."""
    return f"{PLATFORM}:{team}:{channel}:{thread_ts}"


def thread_of(conversation: str) -> tuple[str, str]:
    """(channel, thread ts) of a Slack conversation id."""
    platform, _team, channel, thread_ts = conversation.split(":")
    if platform != PLATFORM:
        raise ValueError(f"not a Slack conversation id: {conversation!r}")
    return channel, thread_ts


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(reply: Reply, values: Sequence[str]) -> list[list[dict[str, Any]]]:
    """Block Kit messages for one reply: sections of text, then the buttons, 50 blocks each."""
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in split_text(escape(reply.text), SECTION_CHARS)
    ]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": button.label[:BUTTON_LABEL_CHARS] or "?"},
            "action_id": f"{ACTION_PREFIX}{index}",  # unique within the message
            "value": value,
        }
        for index, (button, value) in enumerate(zip(reply.buttons, values, strict=True))
    ]
    blocks += [{"type": "actions", "elements": row} for row in rows(buttons, BUTTONS_PER_ACTIONS)]
    return [blocks[i : i + BLOCKS_PER_MESSAGE] for i in range(0, len(blocks), BLOCKS_PER_MESSAGE)]


def _fallback(blocks: list[dict[str, Any]]) -> str:
    """Notification text for a message: its sections, or a word when it only has buttons."""
    texts = [block["text"]["text"] for block in blocks if block["type"] == "section"]
    return "\n".join(texts)[:SECTION_CHARS] or "Choose:"


class SlackAdapter:
    """Parses events, runs turns, renders replies. Installs its listeners on the given app."""

    def __init__(self, app: AsyncApp, client: AsyncWebClient, handler: Handler, ledger: Ledger):
        self.app = app
        self.client = client
        self.handler = handler
        self.ledger = ledger
        self.order = ConversationOrder()
        app.event("app_mention")(ack=_ack, lazy=[self.on_mention])
        app.event("message")(ack=_ack, lazy=[self.on_message])
        app.action(re.compile(re.escape(ACTION_PREFIX)))(ack=_ack, lazy=[self.on_button])

    # -- parse --------------------------------------------------------------------------------

    async def on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if _from_bot(event):
            return
        await self._message(body, event)

    async def on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
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
        key = f"{PLATFORM}:thread:{conversation_id(team, channel, root)}"
        if await asyncio.to_thread(self.ledger.get, key) is not None:
            await self._message(body, event)

    async def on_button(self, body: dict[str, Any]) -> None:
        if not body.get("channel") or not body.get("actions"):
            return  # a button outside a conversation (App Home, a modal): nothing to continue
        action = body["actions"][0]
        team, channel = _team(body), body["channel"]["id"]
        message, container = body.get("message") or {}, body.get("container") or {}
        root = (
            message.get("thread_ts")
            or container.get("thread_ts")
            or message.get("ts")
            or container["message_ts"]
        )
        if not await asyncio.to_thread(
            self.ledger.claim, f"{PLATFORM}:action:{team}:{channel}:{action['action_ts']}"
        ):
            return
        payload = await asyncio.to_thread(full_payload, self.ledger, action.get("value", ""))
        incoming = Incoming(
            conversation_id=conversation_id(team, channel, root),
            user_id=f"{PLATFORM}:{team}:{body['user']['id']}",
            button=payload,
            thread_id=root,
            message_id=f"action:{action['action_ts']}",
            platform=PLATFORM,
        )
        await self._turn(incoming)

    async def _message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team, channel, ts = _team(body), event["channel"], event["ts"]
        # app_mention and message events of one message share channel+ts; retries too.
        if not await asyncio.to_thread(
            self.ledger.claim, f"{PLATFORM}:message:{team}:{channel}:{ts}"
        ):
            logs.event(log, "slack.duplicate", event_id=body.get("event_id"), channel=channel)
            return
        root = event.get("thread_ts") or ts
        conversation = conversation_id(team, channel, root)
        await asyncio.to_thread(self.ledger.put, f"{PLATFORM}:thread:{conversation}", "1")
        text = MENTION.sub("", event.get("text") or "").strip()
        if not text and event.get("files"):
            await self.send_reply(conversation, Reply(TEXT_ONLY))
            return
        incoming = Incoming(
            conversation_id=conversation,
            user_id=f"{PLATFORM}:{team}:{event.get('user', '')}",
            text=text,
            thread_id=root,
            message_id=event.get("client_msg_id") or f"{channel}:{ts}",
            platform=PLATFORM,
        )
        await self._turn(incoming)

    # -- turn and render ----------------------------------------------------------------------

    async def _turn(self, incoming: Incoming) -> None:
        async with self.order.hold(incoming.conversation_id):
            await self._render(incoming, await run_turn(self.handler, incoming))

    async def _render(self, incoming: Incoming, replies: Sequence[Reply]) -> None:
        for reply in replies:
            target = reply.conversation_id or incoming.conversation_id
            if not target.startswith(f"{PLATFORM}:"):  # another platform's adapter delivers it
                logs.event(log, "slack.foreign_reply", level=logging.WARNING, target=target)
                continue
            try:
                await self.send_reply(target, reply)
            except SlackApiError as error:  # after the 429 retries: log it, serve the others
                logs.event(log, "slack.send_failed", level=logging.ERROR, error=str(error))

    async def send_reply(self, conversation: str, reply: Reply) -> None:
        await send_reply(self.client, self.ledger, conversation, reply)


async def send_reply(
    client: AsyncWebClient, ledger: Ledger, conversation: str, reply: Reply
) -> None:
    """Post `reply` into a Slack conversation's thread as Block Kit.

    Usable outside a turn, e.g. to relay a support agent's answer, from any process holding a
    Web API client and the shared ledger.
    """
    channel, thread_ts = thread_of(conversation)
    values = [b.payload for b in reply.buttons]
    if not all(fits(value, BUTTON_VALUE_CHARS) for value in values):
        values = await asyncio.to_thread(short_payloads, ledger, values, BUTTON_VALUE_CHARS)
    for blocks in render(reply, values):
        await client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=_fallback(blocks), blocks=blocks
        )


async def _ack(ack: AsyncAck) -> None:
    await ack()


def _team(body: dict[str, Any]) -> str:
    team = body.get("team_id") or (body.get("team") or {}).get("id") or body["user"]["team_id"]
    return str(team)


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


def build_adapter(
    settings: Settings, handler: Handler, ledger: Ledger, client: AsyncWebClient | None = None
) -> SlackAdapter:
    """The bolt app with the listeners installed; serve it over HTTP or Socket Mode."""
    client = client or web_client(settings)
    http = settings.slack_mode == "http"
    if http and settings.slack_signing_secret is None:
        raise ValueError("CONCIERGE_SLACK_SIGNING_SECRET is not set (HTTP mode verifies requests)")
    app = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if http else None,  # type: ignore[union-attr]
        request_verification_enabled=http,
    )
    return SlackAdapter(app, client, handler, ledger)


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


def main(argv: Sequence[str] | None = None) -> int:
    """`concierge slack`: HTTP Events API or Socket Mode, as `CONCIERGE_SLACK_MODE` says."""
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    missing = missing_setting(settings)
    if missing:
        print(missing, file=sys.stderr)
        return 2
    from bots.wiring import build_conversation  # the core's wiring, shared by every adapter

    conversation = build_conversation(settings)
    adapter = build_adapter(settings, conversation.handle, open_ledger(settings))
    from bots.slack.desk import install_handover  # support desk and agents' replies

    start_handover = install_handover(settings, conversation, adapter)
    serve_health(settings, role="slack")  # /healthz and /metrics when metrics_port is set
    if settings.slack_mode == "socket":
        logs.event(log, "slack.socket_mode")

        async def serve() -> None:
            start_handover()
            await serve_socket_mode(adapter, settings)

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())
        return 0
    logs.event(log, "slack.http", host=settings.slack_bind_host, port=settings.slack_port)
    application = http_app(adapter, settings)

    async def on_startup(_: web.Application) -> None:
        start_handover()

    application.on_startup.append(on_startup)
    web.run_app(application, host=settings.slack_bind_host, port=settings.slack_port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
