"""The Telegram adapter's real Application against the Telegram Bot API emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bots.ledger.inbox import Inbox, Pending
from bots.telegram import (
    MAX_CALLBACK_BYTES,
    SEND_CONNECTIONS,
    RepliesFirst,
    TelegramAdapter,
    chat_member,
    chat_of,
    post_to_chat,
    telegram_adapter,
    telegram_conversation_id,
    webhook_secret,
)
from core.infra.settings import Settings
from core.turn import replies as wording
from core.turn.messages import Reply
from tests.bots.conftest import (
    BUTTONS,
    LONG_PAYLOAD,
    LONG_TEXT,
    PRIVATE_TEXT,
    Clerk,
    make_ledger,
)
from tests.bots.peers import (
    BOT_USERNAME,
    LoopThread,
    TelegramEmulator,
    free_port,
    post_json,
    settled,
    start_polling,
    stop_application,
    wait_for,
    wait_until,
)

TOKEN = "1000:polling-test-token"


class Running:
    """An adapter served on a loop thread, polling the emulator."""

    def __init__(self, adapter: TelegramAdapter, loop: LoopThread) -> None:
        self.adapter, self.loop = adapter, loop

    async def start_polling(self) -> None:
        await start_polling(self.adapter.application)

    async def stop(self) -> None:
        await stop_application(self.adapter.application)


@pytest.fixture(scope="module")
def emulator() -> Iterator[TelegramEmulator]:
    peer = TelegramEmulator(TOKEN).start()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def clerk() -> Clerk:
    return Clerk()


HESITANT_CHAT = 2015


class HesitantInbox:
    """The real inbox, except that keeping the first message of HESITANT_CHAT takes 0.5 s."""

    def __init__(self, inner: Inbox) -> None:
        self.inner = inner
        self.hesitated = False

    def accept(self, pending: Pending, lease_s: float) -> bool:
        if pending.incoming.conversation_id == f"telegram:{HESITANT_CHAT}" and not self.hesitated:
            self.hesitated = True
            time.sleep(0.5)
        return self.inner.accept(pending, lease_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def bot(emulator: TelegramEmulator, clerk: Clerk, tmp_path_factory: pytest.TempPathFactory):
    settings = Settings(telegram_token=SecretStr(TOKEN), telegram_base_url=emulator.url)
    ledger = make_ledger(tmp_path_factory.mktemp("tg") / "ledger.sqlite3")
    loop = LoopThread()
    adapter = telegram_adapter(settings, clerk, ledger)
    adapter.intake.inbox = HesitantInbox(adapter.intake.inbox)
    running = Running(adapter, loop)
    loop.run(running.start_polling())
    yield running
    loop.run(running.stop())
    loop.close()


def replies(
    emulator: TelegramEmulator, chat_id: int, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    return wait_for(lambda: emulator.bot_messages(chat_id), count, timeout)


def user_message_id(emulator: TelegramEmulator, chat_id: int, text: str) -> int:
    for item in emulator.history():
        message = item.get("message", {})
        mine = "chat_id" not in message and message.get("chat", {}).get("id") == chat_id
        if mine and message.get("text") == text:
            return int(item["messageId"])
    raise AssertionError(f"no user message {text!r} in chat {chat_id}")


def keyboard(bot_message: dict[str, Any]) -> list[dict[str, str]]:
    markup = bot_message["message"].get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


def test_message_gets_threaded_reply_with_keyboard(emulator, bot, clerk):
    emulator.send("a waterproof jacket under $100", chat_id=2001, user_id=2001)
    [reply] = replies(emulator, 2001, 1)
    asked = user_message_id(emulator, 2001, "a waterproof jacket under $100")
    assert reply["message"]["text"] == "You said: a waterproof jacket under $100"
    assert reply["message"]["reply_parameters"]["message_id"] == asked
    buttons = keyboard(reply)
    assert [b["text"] for b in buttons] == ["More like this", "Not for me", "Full details"]
    assert all(len(b["callback_data"].encode()) <= MAX_CALLBACK_BYTES for b in buttons)
    assert buttons[0]["callback_data"] == "more:P0123:1"  # short payloads pass through
    assert buttons[2]["callback_data"] != LONG_PAYLOAD
    incoming = next(i for i in clerk.seen if i.conversation_id == "telegram:2001")
    assert incoming.user_id == "telegram:2001"
    assert incoming.platform == "telegram"
    assert incoming.message_id == f"2001:{asked}"


def test_button_press_is_answered_and_followed_up(emulator, bot, clerk):
    emulator.send("show me boots", chat_id=2002, user_id=2002)
    [suggestion] = replies(emulator, 2002, 1)
    long_button = keyboard(suggestion)[2]
    answered_before = len(emulator.calls("answerCallbackQuery"))
    emulator.press(suggestion, long_button["callback_data"], user_id=2002)
    follow_up = replies(emulator, 2002, 2)[1]
    assert follow_up["message"]["text"] == f"You chose {LONG_PAYLOAD}"  # the stored payload
    assert follow_up["message"]["reply_parameters"]["message_id"] == suggestion["messageId"]
    assert len(emulator.calls("answerCallbackQuery")) == answered_before + 1
    pressed = [i for i in clerk.seen if i.conversation_id == "telegram:2002" and i.button]
    assert [i.button for i in pressed] == [LONG_PAYLOAD]
    assert pressed[0].message_id is not None and pressed[0].message_id.startswith("callback:")


def test_long_reply_is_split_at_paragraphs(emulator, bot):
    emulator.send("long", chat_id=2003, user_id=2003)
    wait_until(lambda: (m := emulator.bot_messages(2003)) and len(m) >= 4 and m)
    pieces = settled(lambda: emulator.bot_messages(2003))  # and nothing more arrives
    texts = [p["message"]["text"] for p in pieces]
    assert len(texts) == 4 and all(len(t) <= 4096 for t in texts)
    paragraphs = LONG_TEXT.split("\n\n")
    assert [p.strip() for t in texts for p in t.split("\n\n")] == [p.strip() for p in paragraphs]
    assert "reply_parameters" in pieces[0]["message"]
    assert all("reply_parameters" not in p["message"] for p in pieces[1:])
    assert [bool(keyboard(p)) for p in pieces] == [False, False, False, True]


def test_non_text_message_gets_text_only_answer(emulator, bot, clerk):
    sticker = {
        "file_id": "CAACAg",
        "file_unique_id": "AgAD",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    emulator.send(None, chat_id=2004, user_id=2004, sticker=sticker)
    [reply] = replies(emulator, 2004, 1)
    assert reply["message"]["text"] == wording.TEXT_ONLY
    assert not [i for i in clerk.seen if i.conversation_id == "telegram:2004"]


def test_photo_album_gets_one_text_only_answer(emulator, bot):
    photo = [{"file_id": "AgACAg", "file_unique_id": "AQAD", "width": 90, "height": 90}]
    for _ in range(3):
        emulator.send(None, chat_id=2014, user_id=2014, photo=photo, media_group_id="album-1")
    emulator.send("and a question", chat_id=2014, user_id=2014)
    texts = [m["message"]["text"] for m in replies(emulator, 2014, 2)]
    assert [m["message"]["text"] for m in settled(lambda: emulator.bot_messages(2014))] == texts
    assert sorted(texts) == sorted([wording.TEXT_ONLY, "You said: and a question"])


def test_typing_action_while_a_slow_turn_runs(emulator, bot):
    emulator.send("slow", chat_id=2005, user_id=2005)
    replies(emulator, 2005, 1)
    methods = [
        c["method"]
        for c in emulator.calls()
        if str(c["body"].get("chat_id")) == "2005" and c["method"] != "getUpdates"
    ]
    assert methods[:2] == ["sendChatAction", "sendMessage"]
    action = next(c for c in emulator.calls("sendChatAction") if c["body"]["chat_id"] == "2005")
    assert action["body"]["action"] == "typing"
    emulator.send("quick", chat_id=2012, user_id=2012)  # answered before the indicator is due
    replies(emulator, 2012, 1)
    assert not [c for c in emulator.calls("sendChatAction") if c["body"]["chat_id"] == "2012"]


def test_messages_of_one_chat_are_answered_in_order(emulator, bot, clerk):
    emulator.send("slow", chat_id=2013, user_id=2013)  # a 0.6 s turn
    emulator.send("right after", chat_id=2013, user_id=2013)
    texts = [m["message"]["text"] for m in replies(emulator, 2013, 2)]
    assert texts == ["You said: slow", "You said: right after"]
    assert clerk.texts("telegram:2013") == ["slow", "right after"]


def test_a_later_message_never_overtakes_one_whose_claim_is_slow(emulator, bot, clerk):
    """Updates are handled concurrently; the first message's delivery claim is slow here, and
    the second still waits for it (it took its place in line before any await)."""
    emulator.send("first", chat_id=HESITANT_CHAT, user_id=HESITANT_CHAT)
    emulator.send("second", chat_id=HESITANT_CHAT, user_id=HESITANT_CHAT)
    texts = [m["message"]["text"] for m in replies(emulator, HESITANT_CHAT, 2)]
    assert texts == ["You said: first", "You said: second"]
    assert clerk.texts(f"telegram:{HESITANT_CHAT}") == ["first", "second"]


def test_rate_limited_send_is_retried_after_retry_after(emulator, bot):
    emulator.throttle("sendMessage", count=1, retry_after=1)
    emulator.send("hello again", chat_id=2006, user_id=2006)
    [reply] = replies(emulator, 2006, 1, timeout=15)
    assert reply["message"]["text"] == "You said: hello again"
    attempts = [c for c in emulator.calls("sendMessage") if c["body"]["chat_id"] == "2006"]
    assert len(attempts) == 2
    assert attempts[1]["at"] - attempts[0]["at"] >= 1000  # waited for retry_after


def test_duplicate_delivery_is_answered_once(emulator, bot, clerk):
    emulator.send("first", chat_id=2007, user_id=2007)
    replies(emulator, 2007, 1)
    emulator.redeliver_last()
    emulator.send("second", chat_id=2007, user_id=2007)  # taken after the redelivery
    replies(emulator, 2007, 2)
    texts = [m["message"]["text"] for m in settled(lambda: emulator.bot_messages(2007))]
    assert texts == ["You said: first", "You said: second"]
    assert clerk.texts("telegram:2007") == ["first", "second"]


def test_group_messages_only_when_mentioned_or_replied_to(emulator, bot, clerk):
    group = -3001
    emulator.send("anyone seen my keys?", chat_id=group, user_id=2008, kind="group")
    mention = f"@{BOT_USERNAME}"
    emulator.send(
        f"{mention} red sneakers",
        chat_id=group,
        user_id=2008,
        kind="group",
        entities=[{"type": "mention", "offset": 0, "length": len(mention)}],
    )
    [reply] = replies(emulator, group, 1)
    assert reply["message"]["text"] == "You said: red sneakers"
    bot_reply = {
        "message_id": reply["messageId"],
        "date": int(time.time()),
        "chat": {"id": group, "type": "group", "title": "Shop group"},
        "from": {"id": 666, "is_bot": True, "first_name": "Concierge Test"},
        "text": reply["message"]["text"],
    }
    emulator.send(
        "cheaper please", chat_id=group, user_id=2008, kind="group", reply_to_message=bot_reply
    )
    replies(emulator, group, 2)
    assert clerk.texts(f"telegram:{group}@2008") == ["red sneakers", "cheaper please"]


def test_forum_topic_is_its_own_conversation(emulator, bot, clerk):
    forum = -1005
    mention = f"@{BOT_USERNAME}"
    emulator.send(
        f"{mention} gift ideas",
        chat_id=forum,
        user_id=2015,
        kind="supergroup",
        message_thread_id=77,
        is_topic_message=True,
        entities=[{"type": "mention", "offset": 0, "length": len(mention)}],
    )
    [reply] = replies(emulator, forum, 1)
    assert reply["message"]["message_thread_id"] == 77  # answered inside the topic
    assert clerk.texts(f"telegram:{forum}:77@2015") == ["gift ideas"]
    topic = [i for i in clerk.seen if i.conversation_id == f"telegram:{forum}:77@2015"]
    assert [i.thread_id for i in topic] == ["77"]


def mention_in_group(emulator: TelegramEmulator, group: int, user_id: int, text: str) -> None:
    said = f"@{BOT_USERNAME} {text}"
    entities = [{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}]
    emulator.send(said, chat_id=group, user_id=user_id, kind="group", entities=entities)


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["message"]["text"] for m in messages]


def test_group_members_have_conversations_of_their_own(emulator, bot, clerk):
    group = -3101
    mention_in_group(emulator, group, 2101, "red sneakers")
    mention_in_group(emulator, group, 2102, "a rain jacket")
    replies(emulator, group, 2)
    assert clerk.texts(f"telegram:{group}@2101") == ["red sneakers"]
    assert clerk.texts(f"telegram:{group}@2102") == ["a rain jacket"]
    assert not clerk.texts(f"telegram:{group}")


def test_a_keyboard_answers_only_the_member_it_was_shown_to(emulator, bot, clerk):
    group = -3102
    mention_in_group(emulator, group, 2103, "hiking boots")
    [suggestion] = replies(emulator, group, 1)
    data = keyboard(suggestion)[0]["callback_data"]
    emulator.press(suggestion, data, user_id=2104)  # another member of the group
    [refusal] = wait_until(
        lambda: [
            call
            for call in emulator.calls("answerCallbackQuery")
            if call["body"].get("text") == wording.NOT_YOUR_BUTTON
        ]
    )
    assert refusal["body"]["show_alert"] in (True, "true", "True")
    emulator.press(suggestion, data, user_id=2103)  # the member it was shown to
    follow_up = replies(emulator, group, 2)[1]
    assert follow_up["message"]["text"] == "You chose more:P0123:1"
    assert texts(settled(lambda: emulator.bot_messages(group))) == [
        "You said: hiking boots",
        "You chose more:P0123:1",
    ]
    pressed = [i for i in clerk.seen if i.button and f"telegram:{group}" in i.conversation_id]
    assert [(i.conversation_id, i.user_id) for i in pressed] == [
        (f"telegram:{group}@2103", "telegram:2103")
    ]


def test_a_button_nobody_remembers_continues_the_pressers_conversation(emulator, bot, clerk):
    group = -3106
    old = {"messageId": 987654, "message": {"chat_id": group, "text": "Earlier suggestions"}}
    emulator.press(old, "more:P0123:1", user_id=2112)
    [follow_up] = replies(emulator, group, 1)
    assert follow_up["message"]["text"] == "You chose more:P0123:1"
    assert [i.button for i in clerk.seen if i.conversation_id == f"telegram:{group}@2112"] == [
        "more:P0123:1"
    ]


def test_private_reply_in_a_group_goes_to_the_members_private_chat(emulator, bot, clerk):
    group, member = -3103, 2105
    mention_in_group(emulator, group, member, "private")
    [personal] = replies(emulator, member, 1)
    assert personal["message"]["text"] == PRIVATE_TEXT
    assert "reply_parameters" not in personal["message"]
    [notice] = replies(emulator, group, 1)
    assert notice["message"]["text"] == wording.SENT_PRIVATELY
    assert texts(settled(lambda: emulator.bot_messages(group))) == [wording.SENT_PRIVATELY]
    assert clerk.texts(f"telegram:{group}@{member}") == ["private"]


def test_private_reply_to_a_member_who_never_started_the_bot(emulator, bot, clerk):
    group, member = -3104, 2106
    emulator.never_started(member)
    mention_in_group(emulator, group, member, "private")
    [notice] = replies(emulator, group, 1)
    assert notice["message"]["text"] == wording.open_private_chat(f"https://t.me/{BOT_USERNAME}")
    refused = [c for c in emulator.calls("sendMessage") if c["body"]["chat_id"] == str(member)]
    assert len(refused) == 1  # tried once, refused by Telegram
    assert texts(settled(lambda: emulator.bot_messages(group))) == [notice["message"]["text"]]
    assert not emulator.bot_messages(member)  # the personal text is nowhere


def test_start_with_a_payload_links_the_account(emulator, bot, clerk, caplog):
    caplog.set_level(logging.DEBUG, logger="bots")
    caplog.set_level(logging.DEBUG, logger="core")
    emulator.send(
        "/start tok3n-Abc_123",
        chat_id=2107,
        user_id=2107,
        entities=[{"type": "bot_command", "offset": 0, "length": 6}],
    )
    [reply] = replies(emulator, 2107, 1)
    assert reply["message"]["text"] == "You said: link tok3n-Abc_123"
    assert clerk.texts("telegram:2107") == ["link tok3n-Abc_123"]
    ours = [r for r in caplog.records if r.name.startswith(("bots", "core"))]
    assert ours and not [r for r in ours if "tok3n" in r.getMessage()]


def test_relayed_reply_reaches_a_members_conversation_in_a_group(emulator, bot, clerk):
    group, member = -3105, 2108
    conversation = f"telegram:{group}@{member}"
    adapter = bot.adapter
    reply = Reply("An agent here: which size do you need?", buttons=BUTTONS)
    bot.loop.run(post_to_chat(adapter.bot, adapter.ledger, conversation, reply))
    [pushed] = replies(emulator, group, 1)
    assert pushed["message"]["text"] == reply.text
    emulator.press(pushed, keyboard(pushed)[1]["callback_data"], user_id=member)
    assert replies(emulator, group, 2)[1]["message"]["text"] == "You chose skip:P0123:1"
    assert [i.button for i in clerk.seen if i.conversation_id == conversation] == ["skip:P0123:1"]
    personal = Reply(PRIVATE_TEXT, private=True)
    bot.loop.run(post_to_chat(adapter.bot, adapter.ledger, conversation, personal))
    assert texts(replies(emulator, member, 1)) == [PRIVATE_TEXT]
    assert texts(replies(emulator, group, 3))[2] == wording.SENT_PRIVATELY


def test_start_and_help_commands(emulator, bot, clerk):
    emulator.send(
        "/start",
        chat_id=2009,
        user_id=2009,
        entities=[{"type": "bot_command", "offset": 0, "length": 6}],
    )
    [reply] = replies(emulator, 2009, 1)
    assert "store's assistant" in reply["message"]["text"]
    emulator.send(
        "/help",
        chat_id=2009,
        user_id=2009,
        entities=[{"type": "bot_command", "offset": 0, "length": 5}],
    )
    assert "store's assistant" in replies(emulator, 2009, 2)[1]["message"]["text"]
    emulator.send(
        "/order",
        chat_id=2009,
        user_id=2009,
        entities=[{"type": "bot_command", "offset": 0, "length": 6}],
    )
    assert "store's assistant" in replies(emulator, 2009, 3)[2]["message"]["text"]
    assert not clerk.texts("telegram:2009")


def test_failed_turn_gets_an_honest_answer(emulator, bot):
    emulator.send("fail", chat_id=2010, user_id=2010)
    [reply] = replies(emulator, 2010, 1)
    assert reply["message"]["text"] == wording.INTERNAL_ERROR


def test_send_reply_outside_a_turn(emulator, bot):
    """What a support agent's relay uses: a reply pushed to a conversation, no update behind it."""
    adapter = bot.adapter
    reply = Reply("An agent here: your parcel left the warehouse.", buttons=BUTTONS)
    bot.loop.run(post_to_chat(adapter.bot, adapter.ledger, "telegram:2011", reply))
    [pushed] = replies(emulator, 2011, 1)
    assert pushed["message"]["text"] == reply.text
    assert "reply_parameters" not in pushed["message"]
    assert [b["text"] for b in keyboard(pushed)] == [b.label for b in BUTTONS]


def test_conversation_ids_round_trip():
    assert telegram_conversation_id(-100123, 7) == "telegram:-100123:7"
    assert chat_of("telegram:-100123:7") == (-100123, 7)
    assert chat_of("telegram:55") == (55, None)
    assert telegram_conversation_id(-100123, 7, member=42) == "telegram:-100123:7@42"
    assert chat_of("telegram:-100123:7@42") == (-100123, 7)
    assert chat_of("telegram:-5@42") == (-5, None)
    assert (chat_member("telegram:-5@42"), chat_member("telegram:55")) == (42, None)
    with pytest.raises(ValueError):
        chat_of("slack:T1:C1:1.0")


def test_sends_share_a_small_connection_pool(tmp_path: Path) -> None:
    """httpx walks every pooled connection for each request: with python-telegram-bot's
    default of 256 connections, that walk took about a fifth of the bot's time under load."""
    settings = Settings(telegram_token=SecretStr("3000:pool-test-token"))
    adapter = telegram_adapter(settings, Clerk(), make_ledger(tmp_path / "ledger.sqlite3"))
    pool = adapter.application.bot.request._client._transport._pool  # type: ignore[attr-defined]
    assert pool._max_connections == SEND_CONNECTIONS < 256


def test_a_typing_action_never_holds_a_reply_back(tmp_path: Path) -> None:
    """Replies and typing actions share the bot's rate budget: once it is spent, a typing action
    is dropped, not queued before the replies; with budget left it goes out."""
    calls: list[str] = []

    def call(endpoint: str) -> Any:
        async def send() -> bool:
            calls.append(endpoint)
            return True

        return limiter.process_request(send, (), {}, endpoint, {"chat_id": 7}, None)

    async def scenario() -> tuple[bool, float]:
        assert await call("sendChatAction") is True  # budget left: sent
        await call("sendMessage")  # the second and last request this second
        dropped = await call("sendChatAction")
        started = time.monotonic()
        await call("sendMessage")  # waits for the budget, as before
        return dropped, time.monotonic() - started

    limiter = RepliesFirst(overall_max_rate=2, overall_time_period=1)
    dropped, waited = asyncio.run(scenario())
    assert dropped is True
    assert calls == ["sendChatAction", "sendMessage", "sendMessage"]
    assert waited > 0.2
    settings = Settings(telegram_token=SecretStr("3000:pool-test-token"))
    adapter = telegram_adapter(settings, Clerk(), make_ledger(tmp_path / "ledger.sqlite3"))
    assert isinstance(adapter.application.bot.rate_limiter, RepliesFirst)


def test_webhook_mode_checks_the_secret_token(tmp_path: Path):
    token = "2000:webhook-test-token"
    emulator = TelegramEmulator(token).start()
    clerk = Clerk()
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram"
    settings = Settings(telegram_token=SecretStr(token), telegram_base_url=emulator.url,
                        telegram_webhook_url=url,
                        telegram_webhook_secret=SecretStr("webhook-test-secret"))
    adapter = telegram_adapter(settings, clerk, make_ledger(tmp_path / "ledger.sqlite3"))
    application = adapter.application
    loop = LoopThread()

    async def start() -> None:
        await application.initialize()
        assert application.updater is not None
        await application.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            webhook_url=url,
            secret_token=webhook_secret(settings),
        )
        await application.start()

    async def stop() -> None:
        await stop_application(application)

    try:
        loop.run(start())
        [registered] = emulator.calls("setWebhook")
        assert registered["body"]["secret_token"] == webhook_secret(settings)
        emulator.send("hello over the webhook", chat_id=4001, user_id=4001)
        [reply] = replies(emulator, 4001, 1)
        assert reply["message"]["text"] == "You said: hello over the webhook"
        emulator.redeliver_last()  # Telegram delivering twice
        forged = {
            "update_id": 999,
            "message": {
                "message_id": 999,
                "date": int(time.time()),
                "text": "forged",
                "chat": {"id": 4001, "type": "private"},
                "from": {"id": 4001, "is_bot": False, "first_name": "Eve"},
            },
        }
        status, _ = post_json(url, forged)
        assert status == 403
        status, _ = post_json(url, forged, {"X-Telegram-Bot-Api-Secret-Token": "wrong"})
        assert status == 403
        # A message after the redelivery: once it is answered, the redelivered one was handled
        # (one chat's updates are handled in order); then nothing more may arrive.
        emulator.send("and one more", chat_id=4001, user_id=4001)
        replies(emulator, 4001, 2)
        sent = [m["message"]["text"] for m in settled(lambda: emulator.bot_messages(4001))]
        assert sent == ["You said: hello over the webhook", "You said: and one more"]
        assert clerk.texts("telegram:4001") == ["hello over the webhook", "and one more"]
    finally:
        loop.run(stop())
        loop.close()
        emulator.stop()
    assert json.dumps(registered)  # recorded calls are plain JSON


def test_the_emulator_keeps_an_update_until_an_offset_confirms_it() -> None:
    """As Telegram does: a bot stopped after fetching an update, before handling it, gets it
    again on restart (the crash-safety and load tests rely on the emulator behaving so)."""
    token = "7200:keep-until-confirmed-token-abcdefghij"
    peer = TelegramEmulator(token).start()
    try:
        peer.send("are you there?")

        def fetch(**body: int) -> list[int]:
            status, answer = post_json(f"{peer.url}/bot{token}/getUpdates", body)
            assert status == 200
            return [update["update_id"] for update in answer["result"]]

        [first] = fetch()
        assert fetch() == [first] and fetch(offset=first) == [first]  # fetched, not confirmed
        assert fetch(offset=first + 1) == []  # confirmed
        assert fetch() == []
    finally:
        peer.stop()
