"""Telegram adapter: python-telegram-bot's Application in front of the conversation core.

It parses updates into `Incoming`, renders each `Reply` as messages with an inline keyboard, and
meets Telegram's duties: callback queries answered, 64-byte callback data, 4096-character
messages, a typing action while the turn runs, 429s retried by the rate limiter, and duplicate
deliveries answered once. Run it as a module: `python -m bots.telegram`.

In a group each member has a conversation of their own (`telegram:<chat>[:<topic>]@<user>`): a
keyboard answers only the member it was shown to (the ledger keeps who that was), and a private
reply (orders, the account) goes to the member's private chat, with a notice in the group, or,
when the member never started the bot, a link to do so and nothing personal in the group.
`/start <payload>` (a `t.me/<bot>?start=<payload>` deep link) asks the core to `link <payload>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlparse

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, MessageEntityType
from telegram.error import Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bots.channel import (
    BUSY_GIVE_UP_S,
    ConversationOrder,
    Handler,
    member_conversation,
    own_replies,
    run_turn,
    split_member,
    threadsafe,
)
from bots.envfile import settings_help
from bots.intake import Intake
from bots.layout import rows, split_text, utf16_units
from bots.ledger.factory import inbox_beside, open_ledger
from bots.ledger.inbox import Inbox, Pending
from bots.ledger.payloads import fits, full_payload, short_payloads
from bots.ledger.store import Ledger, stored_key
from bots.shutdown import on_sigterm
from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.store import customer_topic
from core.infra import logs
from core.infra.commands import CommandHelp
from core.infra.health import serve as serve_health
from core.infra.logs import event
from core.infra.settings import Settings
from core.turn import replies
from core.turn.messages import Button, Incoming, Reply

log = logging.getLogger(__name__)

PLATFORM = "telegram"
MAX_MESSAGE_UNITS = 4096  # Telegram counts UTF-16 code units
MAX_CALLBACK_BYTES = 64
BUTTONS_PER_ROW = 3
TYPING_AFTER_S = 0.3  # turns quicker than this show no typing indicator
TYPING_EVERY_S = 4.5  # the typing indicator lasts about 5 s
RATE_LIMIT_RETRIES = 3
# httpx walks every pooled connection for each request it starts or ends: with
# python-telegram-bot's default pool of 256, that walk took about a fifth of the bot's Python
# time under load (a sampling profile).
# Telegram takes about 30 messages a second from one bot, so 32 connections never hold sends
# back; a send waits up to SEND_POOL_WAIT_S for a free one.
SEND_CONNECTIONS = 32
SEND_POOL_WAIT_S = 10.0
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
DEEP_LINK_COMMAND = "link"  # `/start <payload>` reaches the core as `link <payload>`


def telegram_conversation_id(
    chat_id: int, topic_id: int | None = None, member: int | None = None
) -> str:
    """`telegram:<chat>`, in a forum topic `telegram:<chat>:<topic>`; in a group, one member's
    conversation there: `telegram:<chat>[:<topic>]@<user id>`."""
    place = f"{PLATFORM}:{chat_id}" + (f":{topic_id}" if topic_id is not None else "")
    return member_conversation(place, None if member is None else str(member))


def chat_of(conversation: str) -> tuple[int, int | None]:
    """(chat id, topic id) of a Telegram conversation id: where its messages are posted."""
    place, _member = split_member(conversation)
    platform, chat, *topic = place.split(":")
    if platform != PLATFORM or len(topic) > 1:
        raise ValueError(f"not a Telegram conversation id: {conversation!r}")
    return int(chat), int(topic[0]) if topic else None


def chat_member(conversation: str) -> int | None:
    """The user whose conversation it is in a group; None for a private chat."""
    chat_of(conversation)  # a Telegram conversation id, or ValueError
    member = split_member(conversation)[1]
    return None if member is None else int(member)


def _topic(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def _owner_key(chat_id: int, message_id: int) -> str:
    """The ledger key naming the member a group message's keyboard was shown to."""
    return f"{PLATFORM}:owner:{chat_id}:{message_id}"


ApiResult = bool | dict[str, Any] | list[dict[str, Any]]  # a Bot API call's decoded result


class RepliesFirst(AIORateLimiter):
    """python-telegram-bot's rate limiter, except that a typing action is dropped while the
    bot's budget for this second is spent. Every request to a chat shares the 30 a second that
    Telegram allows a bot, so under load each typing action held a reply back (and slower
    replies meant more typing actions); the indicator is only cosmetic."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, ApiResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> ApiResult:
        budget = self._base_limiter  # None when the bot-wide rate is not limited
        if endpoint == "sendChatAction" and budget is not None and not budget.has_capacity():
            return True  # what Telegram answers to a chat action
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )


class TelegramAdapter:
    """Parses updates, runs turns, renders replies. Holds the Application it is installed in."""

    def __init__(
        self,
        application: Application,
        handler: Handler,
        ledger: Ledger,
        inbox: Inbox | None = None,
        lease_s: float = Settings.model_fields["inbox_lease_s"].default,
        busy_give_up_s: float = BUSY_GIVE_UP_S,
    ) -> None:
        self.application = application
        self.handler = handler
        self.ledger = ledger
        self.order = ConversationOrder()
        # Messages are kept in the inbox until answered; beside the ledger unless given.
        self.intake = Intake(
            inbox if inbox is not None else inbox_beside(ledger),
            PLATFORM, self._answer, self.order.hold, lease_s,
        )
        self.busy_give_up_s = busy_give_up_s
        application.add_handler(CommandHandler("start", self.on_start))
        application.add_handler(CommandHandler("help", self.on_help))
        application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.TEXT & ~filters.COMMAND, self.on_text
            )
        )
        application.add_handler(CallbackQueryHandler(self.on_button))
        application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & ~filters.TEXT & ~filters.StatusUpdate.ALL,
                self.on_other,
            )
        )
        # An unknown /command in a private chat gets the help text rather than silence.
        application.add_handler(
            MessageHandler(
                filters.UpdateType.MESSAGE & filters.COMMAND & filters.ChatType.PRIVATE,
                self.on_help,
            )
        )
        application.add_error_handler(self.on_error)

    @property
    def bot(self) -> Bot:
        return self.application.bot

    # -- parse --------------------------------------------------------------------------------

    # Each handler takes its conversation's place in line before its first `await`: updates are
    # handled concurrently, and a later message must not overtake an earlier one while the
    # earlier one's delivery key is still being claimed.

    async def on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None:
            return
        conversation = self._conversation(message)
        async with self.order.hold(conversation):
            if await self._first_delivery(message):
                await self.send_reply(conversation, Reply(replies.CHAT_HELP), message.message_id)

    async def on_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """`/start` alone: the help text. `/start <payload>` in a private chat: the customer
        followed the shop's `t.me/<bot>?start=<payload>` link, so the core links the account
        (the payload is a credential: it is never logged)."""
        message = update.message
        if message is None or message.chat.type != ChatType.PRIVATE or not context.args:
            await self.on_help(update, context)
            return
        incoming = Incoming(
            conversation_id=self._conversation(message),
            user_id=_user_id(message),
            text=f"{DEEP_LINK_COMMAND} {context.args[0]}",
            message_id=f"{message.chat.id}:{message.message_id}",
            platform=PLATFORM,
        )
        await self._take(_message_key(message), incoming, message.message_id)

    async def on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.text is None or not self._addressed(message):
            return
        incoming = Incoming(
            conversation_id=self._conversation(message),
            user_id=_user_id(message),
            text=self._without_mention(message.text),
            thread_id=str(_topic(message)) if _topic(message) is not None else None,
            message_id=f"{message.chat.id}:{message.message_id}",
            platform=PLATFORM,
        )
        await self._take(_message_key(message), incoming, message.message_id)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        message = query.message
        if query.data is None or message is None or not isinstance(message, Message):
            await _answer(query)  # every query is answered, so the button stops spinning
            return  # inline-mode or too old to reply to: nothing to continue
        conversation = await self._button_conversation(message, query.from_user.id)
        if conversation is None:  # another member's keyboard: refused, in an alert to the presser
            event(log, "telegram.button_refused", chat=message.chat.id)
            await _answer(query, replies.NOT_YOUR_BUTTON)
            return
        await _answer(query)
        payload = await asyncio.to_thread(full_payload, self.ledger, query.data)
        incoming = Incoming(
            conversation_id=conversation,
            user_id=f"{PLATFORM}:{query.from_user.id}",
            button=payload,
            thread_id=str(_topic(message)) if _topic(message) is not None else None,
            message_id=f"callback:{query.id}",
            platform=PLATFORM,
        )
        await self._take(f"{PLATFORM}:callback:{query.id}", incoming, message.message_id)

    async def on_other(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or not self._addressed(message):
            return
        conversation = self._conversation(message)
        async with self.order.hold(conversation):
            if not await self._first_delivery(message):
                return
            album = message.media_group_id
            key = f"{PLATFORM}:album:{album}"
            if album and not await asyncio.to_thread(self.ledger.claim, key):
                return  # an album arrives as one message per photo: answer it once
            event(log, "telegram.not_text", chat=message.chat.id)
            await self.send_reply(conversation, Reply(replies.TEXT_ONLY), message.message_id)

    def _addressed(self, message: Message) -> bool:
        """Private chats always; groups only when the bot is mentioned or replied to."""
        if message.chat.type == ChatType.PRIVATE:
            return True
        replied = message.reply_to_message
        if replied is not None and replied.from_user and replied.from_user.id == self.bot.id:
            return True
        mentions = message.parse_entities(
            [MessageEntityType.MENTION, MessageEntityType.TEXT_MENTION]
        )
        mentions |= message.parse_caption_entities([MessageEntityType.MENTION])
        for entity, text in mentions.items():
            if entity.user is not None and entity.user.id == self.bot.id:
                return True
            if text.lower() == f"@{self.bot.username}".lower():
                return True
        return False

    def _without_mention(self, text: str) -> str:
        return text.replace(f"@{self.bot.username}", "").strip()

    def _conversation(self, message: Message) -> str:
        """The chat's conversation, or in a group the sender's own conversation there."""
        user = message.from_user
        member = user.id if user is not None and message.chat.type in GROUPS else None
        return telegram_conversation_id(message.chat.id, _topic(message), member)

    async def _button_conversation(self, message: Message, presser: int) -> str | None:
        """The conversation a button under `message` continues; None when, in a group, the
        keyboard was shown to another member."""
        if message.chat.type not in GROUPS:
            return telegram_conversation_id(message.chat.id, _topic(message))
        key = _owner_key(message.chat.id, message.message_id)
        owner = await asyncio.to_thread(self.ledger.get, key)
        own = telegram_conversation_id(message.chat.id, _topic(message), presser)
        # No record: older than the ledger remembers, and the core says the button expired.
        return own if owner is None or owner == stored_key(own) else None

    async def _first_delivery(self, message: Message) -> bool:
        """Claim a message that runs no turn (help, not text) in the ledger: answered once."""
        first = await asyncio.to_thread(self.ledger.claim, _message_key(message))
        if not first:
            event(log, "telegram.duplicate", chat=message.chat.id, message=message.message_id)
        return first

    # -- turn and render ----------------------------------------------------------------------

    async def _take(self, key: str, incoming: Incoming, reply_to: int) -> None:
        """Keep the message in the inbox (in its conversation's line, taken before the first
        `await`), then answer it; a repeated delivery is dropped."""
        async with self.order.hold(incoming.conversation_id):
            pending = await self.intake.accept(key, incoming, str(reply_to))
            if pending is not None:
                await self.intake.run(pending)

    async def _answer(self, pending: Pending) -> None:
        """Run the turn, typing meanwhile, and send its replies (a failed send raises, and the
        message is answered again from the inbox: the core kept the replies it gave)."""
        incoming = pending.incoming
        chat_id, topic_id = chat_of(incoming.conversation_id)
        typing = asyncio.create_task(self._keep_typing(chat_id, topic_id))
        try:
            turn_replies = await run_turn(self.handler, incoming, self.busy_give_up_s)
        finally:
            typing.cancel()
        anchor = int(pending.anchor) if pending.anchor else None
        for target, reply in own_replies(PLATFORM, incoming, turn_replies):
            reply_to = anchor if target == incoming.conversation_id else None
            await self.send_reply(target, reply, reply_to)

    async def _keep_typing(self, chat_id: int, topic_id: int | None) -> None:
        # Quick turns need no indicator, and each action spends the bot's rate-limit budget.
        await asyncio.sleep(TYPING_AFTER_S)
        while True:
            try:
                await self.bot.send_chat_action(
                    chat_id, ChatAction.TYPING, message_thread_id=topic_id
                )
            except TelegramError as error:  # cosmetic: the turn goes on without the indicator
                event(log, "telegram.typing_failed", level=logging.WARNING, error=str(error))
            await asyncio.sleep(TYPING_EVERY_S)

    async def send_reply(
        self, conversation: str, reply: Reply, reply_to: int | None = None
    ) -> None:
        await post_to_chat(self.bot, self.ledger, conversation, reply, reply_to)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Telegram refused or could not be reached after the rate limiter's retries."""
        event(log, "telegram.error", level=logging.ERROR, error=repr(context.error))


def _message_key(message: Message) -> str:
    return f"{PLATFORM}:message:{message.chat.id}:{message.message_id}"


def _user_id(message: Message) -> str:
    user = message.from_user
    return f"{PLATFORM}:{user.id if user else message.chat.id}"


async def _answer(query: CallbackQuery, alert: str | None = None) -> None:
    """Answer a callback query (Telegram's duty): silently, or with `alert` shown to the presser."""
    try:
        await query.answer(text=alert, show_alert=alert is not None)
    except TelegramError as error:
        event(log, "telegram.answer_failed", level=logging.WARNING, error=str(error))


async def post_to_chat(
    bot: Bot, ledger: Ledger, conversation: str, reply: Reply, reply_to: int | None = None
) -> None:
    """Post `reply` to a Telegram conversation, split to fit, buttons under the last piece.

    In a member's conversation in a group, the ledger records whom a keyboard was shown to, and
    a private reply goes to the member's private chat instead, with a notice in the group.
    Usable outside a turn, e.g. to relay a support agent's answer, from any process holding a
    `Bot` (initialized) and the shared ledger.
    """
    chat_id, topic_id = chat_of(conversation)
    member = chat_member(conversation)
    if member is not None and reply.private:
        await _post_privately(bot, ledger, conversation, reply, reply_to)
        return
    carrier = await _post(bot, ledger, chat_id, topic_id, reply, reply_to)
    if member is not None and carrier is not None and reply.buttons:
        key = _owner_key(chat_id, carrier.message_id)
        # A digest: the ledger need not name the member (nothing left after a deletion).
        await asyncio.to_thread(ledger.put, key, stored_key(conversation))


async def _post_privately(
    bot: Bot, ledger: Ledger, conversation: str, reply: Reply, reply_to: int | None
) -> None:
    """A group member's private reply: in their private chat (a bot may write there only once
    the user has started it), and a notice in the group; never the private text in the group."""
    chat_id, topic_id = chat_of(conversation)
    member = chat_member(conversation)
    assert member is not None
    try:
        await _post(bot, ledger, member, None, reply, None)
        notice = replies.SENT_PRIVATELY
    except Forbidden:
        event(log, "telegram.private_refused", level=logging.WARNING, chat=chat_id)
        notice = replies.open_private_chat(f"https://t.me/{bot.username}")
    await _post(bot, ledger, chat_id, topic_id, Reply(notice), reply_to)


async def _post(
    bot: Bot,
    ledger: Ledger,
    chat_id: int,
    topic_id: int | None,
    reply: Reply,
    reply_to: int | None,
) -> Message | None:
    """Send `reply` to one chat; the last message sent (the one carrying any keyboard)."""
    keyboard = await _keyboard(ledger, reply.buttons)
    pieces = split_text(reply.text, MAX_MESSAGE_UNITS, utf16_units) or (
        ["Choose:"] if keyboard else []
    )
    sent = None
    for index, piece in enumerate(pieces):
        first, last = index == 0, index == len(pieces) - 1
        sent = await bot.send_message(
            chat_id,
            piece,
            message_thread_id=topic_id,
            reply_parameters=(
                ReplyParameters(reply_to, allow_sending_without_reply=True)
                if first and reply_to is not None
                else None
            ),
            reply_markup=keyboard if last else None,
        )
    return sent


async def _keyboard(ledger: Ledger, buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    data = [b.payload for b in buttons]
    if not all(fits(payload, MAX_CALLBACK_BYTES) for payload in data):
        data = await asyncio.to_thread(short_payloads, ledger, data, MAX_CALLBACK_BYTES)
    keys = [
        InlineKeyboardButton(b.label, callback_data=d) for b, d in zip(buttons, data, strict=True)
    ]
    return InlineKeyboardMarkup(rows(keys, BUTTONS_PER_ROW))


def telegram_adapter(settings: Settings, handler: Handler, ledger: Ledger) -> TelegramAdapter:
    """The Application with its handlers installed; `main()` or a test runs it. Refuses
    settings it could not serve safely: a webhook needs a secret of its own."""
    if settings.telegram_token is None:
        raise ValueError("CONCIERGE_TELEGRAM_TOKEN is not set (the token @BotFather gave you)")
    if settings.telegram_webhook_url:
        webhook_secret(settings)
    base = settings.telegram_base_url.rstrip("/")
    application = (
        Application.builder()
        .token(settings.telegram_token.get_secret_value())
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .rate_limiter(RepliesFirst(max_retries=RATE_LIMIT_RETRIES))
        .connection_pool_size(SEND_CONNECTIONS)
        .pool_timeout(SEND_POOL_WAIT_S)
        .concurrent_updates(True)  # turns of different chats overlap; the core locks per chat
        .build()
    )
    return TelegramAdapter(application, handler, ledger, lease_s=settings.inbox_lease_s,
                           busy_give_up_s=settings.busy_give_up_s)


WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


def webhook_secret(settings: Settings) -> str:
    """The configured secret Telegram must send with each update. Never derived from the bot
    token: whoever read the token would know it too. ValueError when unset or malformed."""
    configured = settings.telegram_webhook_secret
    if configured is None or not configured.get_secret_value():
        raise ValueError("CONCIERGE_TELEGRAM_WEBHOOK_SECRET is not set: a webhook needs a secret "
                         "of its own (e.g. `openssl rand -hex 32`)")
    value = configured.get_secret_value()
    if not WEBHOOK_SECRET.fullmatch(value):
        raise ValueError("CONCIERGE_TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of "
                         "A-Z a-z 0-9 _ - (Telegram's rule)")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """`concierge telegram`: long polling, or a webhook when a public URL is configured."""
    argparse.ArgumentParser(
        prog="concierge telegram", formatter_class=CommandHelp,
        description="Serve customers in Telegram. Needs CONCIERGE_TELEGRAM_TOKEN (from\n"
                    "@BotFather). Long polling by default (no public address needed); a\n"
                    "webhook when CONCIERGE_TELEGRAM_WEBHOOK_URL is set, listening on\n"
                    "CONCIERGE_TELEGRAM_BIND_HOST:CONCIERGE_TELEGRAM_PORT behind your TLS\n"
                    "proxy. `concierge doctor --for telegram` checks the settings first.",
        epilog=settings_help("telegram_"),
    ).parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    if settings.telegram_token is None:
        print("Set CONCIERGE_TELEGRAM_TOKEN to the token @BotFather gave you.", file=sys.stderr)
        return 2
    if settings.telegram_webhook_url:
        try:  # before the models load: a misconfigured webhook fails in a second, in one line
            webhook_secret(settings)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
    from bots.wiring import build_conversation, start_customer_deliveries

    conversation = build_conversation(settings)
    ledger = open_ledger(settings)
    adapter = telegram_adapter(settings, conversation.handle, ledger)
    health = serve_health(settings, role="telegram")  # /healthz and /metrics when metrics_port set
    application = adapter.application
    deliveries: list[Deliveries] = []

    async def start(application: Application) -> None:
        # Support agents' replies (written by another process) reach customers from here.
        send = partial(post_to_chat, application.bot, ledger)
        loop = start_customer_deliveries(
            settings,
            conversation,
            customer_topic(PLATFORM, f"{PLATFORM}:*"),
            threadsafe(send, asyncio.get_running_loop()),
        )
        deliveries.extend([loop] if loop is not None else [])
        adapter.intake.start_replay()  # messages a process that died left unanswered
        on_sigterm(stop)

    async def stop() -> None:
        """SIGTERM: take no more updates, let the turns in flight finish and reply (bounded),
        stop relaying agents' replies, then stop (python-telegram-bot's own shutdown)."""
        if health is not None:
            health.drain()
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        await adapter.intake.drain(settings.shutdown_grace_s)
        for loop in deliveries:
            await asyncio.to_thread(loop.stop)
        application.stop_running()

    application.post_init = start
    url = settings.telegram_webhook_url
    if url:
        event(log, "telegram.webhook", url=url, host=settings.telegram_bind_host)
        application.run_webhook(
            listen=settings.telegram_bind_host,
            port=settings.telegram_port,
            url_path=urlparse(url).path.lstrip("/"),
            webhook_url=url,
            secret_token=webhook_secret(settings),
            allowed_updates=ALLOWED_UPDATES,
            stop_signals=(signal.SIGINT,),  # SIGTERM: `stop` above
        )
    else:
        event(log, "telegram.polling", base_url=settings.telegram_base_url)
        application.run_polling(
            poll_interval=settings.telegram_poll_interval_s,
            allowed_updates=ALLOWED_UPDATES,
            stop_signals=(signal.SIGINT,),  # SIGTERM: `stop` above
        )
    event(log, "telegram.stopped")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
