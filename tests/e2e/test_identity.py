"""Customers' identity end to end, through python-telegram-bot on the Telegram emulator, with
the real services `bots.wiring` builds (the trained local model and recommender): the
embedded default (SQLite store, SQLite state) and the scaled set-up (PostgreSQL store, Redis
state, Redis ledger), e-mail codes through a real SMTP server on 127.0.0.1.

A customer links by deep link (`/start <token>`), sees their orders and nobody else's; another
links by an e-mailed code; an unverified user gets only the ways to verify; and after "delete
my data" nothing of the first one is left in SQLite, Redis or PostgreSQL (scanned).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from bots import telegram
from bots.ledger.factory import open_ledger
from bots.slack import customers as slack
from bots.store import import_main
from bots.wiring import build_conversation
from core.infra.settings import Settings
from core.shopdb.database import ShopDatabase
from core.turn import replies
from core.turn.conversation import Conversation
from tests.bots.peers import (
    BOT_USER,
    BOT_USERNAME,
    TEAM,
    LoopThread,
    SlackWebApi,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    serve_on,
    settled,
    signed_headers,
    start_polling,
    stop_application,
    wait_for,
    wait_until,
)
from tests.conftest import TEST_REDIS, MailServer, redis_namespace, redis_traces, sqlite_traces
from tests.core.shopdb.conftest import postgres_database

TOKEN = "7100:identity-token"
DANA, EVE = 918273645, 546372819  # chat user ids distinct enough to scan the stores for
GROUP = -7200


@pytest.fixture(params=["embedded", "scaled"])
def settings(request: pytest.FixtureRequest, tmp_path: Path,
             mail_server: MailServer) -> Iterator[Settings]:
    common: dict[str, Any] = {
        "sqlite_path": tmp_path / "state.sqlite3",
        "models_dir": Path("models").resolve(),
        "telegram_token": SecretStr(TOKEN),
        "telegram_bot_username": "ConciergeTestBot",
        "smtp_host": mail_server.host,
        "smtp_port": mail_server.port,
        "log_level": "WARNING",
        "rate_limit_burst": 50,  # one scripted person writes faster than any human would
    }
    if request.param == "embedded":
        yield Settings(store_url=SecretStr(f"sqlite:///{tmp_path / 'store.sqlite3'}"), **common)
        return
    with redis_namespace("identity") as prefix:
        databases = postgres_database()
        url = next(databases)
        yield Settings(store_url=SecretStr(url), state_backend="redis", redis_url=TEST_REDIS,
                       redis_prefix=prefix, **common)
        databases.close()


@pytest.fixture
def world(settings: Settings) -> Iterator[tuple[TelegramEmulator, Conversation]]:
    assert import_main(["--demo"], settings) == 0
    conversation = build_conversation(settings)
    emulator = TelegramEmulator(TOKEN).start()
    settings = settings.model_copy(update={"telegram_base_url": emulator.url})
    bot = telegram.telegram_adapter(settings, conversation.handle, open_ledger(settings))
    application = bot.application
    loop = LoopThread()

    async def stop() -> None:
        await stop_application(application)

    loop.run(start_polling(application))
    yield emulator, conversation
    loop.run(stop())
    loop.close()
    emulator.stop()


def mention(emulator: TelegramEmulator, group: int, user: int, text: str) -> None:
    said = f"@{BOT_USERNAME} {text}"
    entities = [{"type": "mention", "offset": 0, "length": len(BOT_USERNAME) + 1}]
    emulator.send(said, chat_id=group, user_id=user, kind="group", entities=entities)


def cleared(traces: Callable[[], list[str]], timeout: float = 10.0) -> list[str]:
    """`traces()` once it is empty, or what is still there after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while (found := traces()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def texts(emulator: TelegramEmulator, chat: int) -> list[str]:
    return [m["message"].get("text", "") for m in emulator.bot_messages(chat)]


def say(emulator: TelegramEmulator, chat: int, text: str, answers: int = 1) -> list[str]:
    before = len(emulator.bot_messages(chat))
    emulator.send(text, chat_id=chat, user_id=chat)
    wait_for(lambda: emulator.bot_messages(chat), before + answers, timeout=30)
    return texts(emulator, chat)[before:]


def test_link_orders_privacy_and_deletion(
    world: tuple[TelegramEmulator, Conversation], settings: Settings, mail_server: MailServer
) -> None:
    emulator, conversation = world
    accounts = conversation.services.accounts
    assert accounts is not None
    database = ShopDatabase(settings.store_url.get_secret_value())
    mine = next(o for o in database.orders_of("C0009") if o.tracking_number)
    theirs = next(o for o in database.orders_of("C0001") if o.tracking_number)

    # Unverified: an order number gets the ways to verify and nothing of the order.
    [answer] = say(emulator, DANA, f"where is my order {mine.id}?")
    assert "To show order details" in answer and mine.tracking_number not in answer

    # The shop's link: a deep link /start <token> links the chat to C0009.
    token = accounts.issue("C0009", datetime.now(UTC)).token
    [linked] = say(emulator, DANA, f"/start {token}")
    assert "linked to your account" in linked
    [overview] = say(emulator, DANA, "where is my order?")
    assert overview.startswith("Your most recent orders") and f"#{mine.id}" in overview
    [own] = say(emulator, DANA, f"where is order {mine.id}?")
    assert mine.tracking_number in own  # type: ignore[operator]
    [other] = say(emulator, DANA, f"where is order {theirs.id}?")
    assert theirs.tracking_number not in other and "among the orders of your account" in other

    # Another chat user links by an e-mailed code to C0001.
    email = database.customer("C0001").email  # type: ignore[union-attr]
    [sent] = say(emulator, EVE, f"my email is {email}")
    assert "6-digit code" in sent
    code = wait_until(lambda: mail_server.codes_for(email), timeout=10)[-1]
    [linked] = say(emulator, EVE, code)
    assert "linked to your account" in linked
    [order] = say(emulator, EVE, f"where is order {theirs.id}?")
    assert theirs.tracking_number in order  # type: ignore[operator]

    # In a group each member has a conversation of their own: order details go by direct
    # message, and a member cannot press another's buttons.
    mention(emulator, GROUP, DANA, "where is my order?")
    wait_until(lambda: any(t == replies.SENT_PRIVATELY for t in texts(emulator, GROUP)))
    assert texts(emulator, DANA)[-1].startswith("Your most recent orders")
    mention(emulator, GROUP, DANA, "I need a waterproof jacket")
    suggestions = wait_for(lambda: emulator.bot_messages(GROUP), 2, timeout=30)[-1]
    buttons = [b for row in suggestions["message"]["reply_markup"]["inline_keyboard"]
               for b in row]
    more = next(b["callback_data"] for b in buttons if b["callback_data"].startswith("more:"))
    emulator.press(suggestions, more, user_id=EVE)
    wait_until(lambda: [c for c in emulator.calls("answerCallbackQuery")
                        if c["body"].get("text") == replies.NOT_YOUR_BUTTON])
    emulator.press(suggestions, more, user_id=DANA)
    wait_for(lambda: emulator.bot_messages(GROUP), 3, timeout=30)
    assert len(settled(lambda: emulator.bot_messages(GROUP))) == 3  # Eve's press: no turn
    assert database.counts()["interactions"] >= 1  # Dana's feedback, kept for training

    # Dana deletes her data: nothing of her is left in the stores.
    [ask] = say(emulator, DANA, "please delete my data")
    message = emulator.bot_messages(DANA)[-1]
    assert "Delete it all?" in ask
    emulator.press(message, "privacy:delete", user_id=DANA)
    wait_until(lambda: any(t.startswith("Done: I deleted") for t in texts(emulator, DANA)),
               timeout=30)
    needle = str(DANA)
    assert accounts.customer_of(f"telegram:{DANA}") is None
    # The adapter drops the press from its inbox just after the reply went out: give it that.
    if settings.state_backend == "redis":
        client = redis.Redis.from_url(settings.redis_url)
        assert cleared(lambda: redis_traces(client, settings.redis_prefix, needle)) == []
    else:
        for path in settings.sqlite_path.parent.glob("*.sqlite3"):
            assert cleared(lambda path=path: sqlite_traces(path, needle)) == [], path
    store_url = settings.store_url.get_secret_value()
    with database.engine.connect() as connection:
        from sqlalchemy import text

        for table in ("linked_identities", "email_codes", "verification_attempts",
                      "interactions", "link_tokens"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            assert not [r for r in rows if needle in str(r)], (store_url, table)
        feedback = connection.execute(text(
            "SELECT count(*) FROM interactions WHERE customer_id = 'C0009' AND kind IN "
            "('more_like_this', 'not_for_me', 'details')")).scalar()
        assert feedback == 0  # the linked customer's button presses went with her
    # Eve is untouched.
    assert accounts.customer_of(f"telegram:{EVE}") == "C0001"
    database.close()


# -- Slack: a link message in a direct message, order details privately from a channel -------

SLACK_SECRET = "identity-signing-secret"


@pytest.fixture
def slack_world(settings: Settings) -> Iterator[tuple[SlackWebApi, str, Conversation]]:
    assert import_main(["--demo"], settings) == 0
    conversation = build_conversation(settings)
    api = SlackWebApi().start()
    port = free_port()
    settings = settings.model_copy(update={
        "slack_bot_token": SecretStr("xoxb-identity"),
        "slack_signing_secret": SecretStr(SLACK_SECRET),
        "slack_api_url": api.base_url,
        "slack_port": port,
    })
    adapter = slack.slack_adapter(settings, conversation.handle, open_ledger(settings))
    loop = LoopThread()
    runner = loop.run(serve_on(slack.http_app(adapter, settings), port))
    yield api, f"http://127.0.0.1:{port}{settings.slack_path}", conversation
    loop.run(runner.cleanup())
    loop.close()
    api.stop()


def slack_event(url: str, event: dict[str, Any], number: int) -> None:
    data = json.dumps(event_body(event, f"EvId{number}")).encode()
    assert post_bytes(url, data, signed_headers(SLACK_SECRET, data))[0] == 200


def test_slack_link_message_and_private_order_details(
    slack_world: tuple[SlackWebApi, str, Conversation], settings: Settings
) -> None:
    api, url, conversation = slack_world
    accounts = conversation.services.accounts
    assert accounts is not None
    token = accounts.issue("C0009", datetime.now(UTC)).token
    for number, text in enumerate((f"link {token}", "where is my order?")):
        ts = f"1700100{number}00.000100"
        slack_event(url, {"type": "message", "channel_type": "im", "channel": "D0DANA",
                          "user": "U0DANA", "text": text, "ts": ts, "client_msg_id": f"m{number}"},
                    number)
        wait_for(lambda: api.posted("D0DANA"), number + 1, timeout=30)
    linked, overview = (post["text"] for post in api.posted("D0DANA"))
    assert "linked to your account" in linked and overview.startswith("Your most recent orders")
    assert accounts.customer_of(f"slack:{TEAM}:U0DANA") == "C0009"
    # Asked in a channel thread: the details go to a direct message, the thread gets a notice.
    slack_event(url, {"type": "app_mention", "channel": "C0SHOP", "user": "U0DANA",
                      "text": f"<@{BOT_USER}> where is my order?", "ts": "1700200000.000100",
                      "client_msg_id": "m9"}, 9)
    notice = wait_for(lambda: api.posted("C0SHOP"), 1, timeout=30)[0]
    assert notice["text"] == replies.SENT_PRIVATELY
    opened = [c for c in api.calls if c["method"] == "conversations.open"]
    assert opened and opened[-1]["body"]["users"] == "U0DANA"
    private = [p for p in api.posted() if p["text"].startswith("Your most recent orders")]
    assert len(private) == 2 and all(p["channel"] != "C0SHOP" for p in private)
