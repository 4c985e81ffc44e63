"""The hand-over across real bot processes: customers on Telegram or Slack, agents in Slack.

Two processes run the adapters' own `main()` (tests/e2e/handover_bot.py) on one store (the
SQLite file of the embedded default, or Redis as when scaled): the Telegram bot polls the
telegram-test-api emulator; the Slack bot receives signed HTTP events, posts to the stand-in
Web API and hosts the support channel. The test plays the customer (through the emulator or
signed Slack events) and the agents (signed Slack events). See tests/e2e/handover_world.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bots.slack.desk import NOT_AN_AGENT
from core.turn import replies
from tests.bots.peers import SlackWebApi, TelegramEmulator, wait_until
from tests.e2e.handover_world import (
    DANA,
    EVE,
    SLOW,
    SUPPORT,
    deliver,
    desk_button,
    ephemerals,
    in_thread,
    message,
    posted_texts,
    press,
    running,
    telegram_says,
    telegram_texts,
    thread_ts,
    ticket_in_channel,
    timestamp,
)


@pytest.fixture(params=["sqlite", "redis"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with running(request.param, tmp_path) as started:
        yield started


@pytest.mark.slow
def test_telegram_customer_slack_agent(world: dict[str, Any]) -> None:
    emulator: TelegramEmulator = world["emulator"]
    api: SlackWebApi = world["api"]
    url: str = world["url"]
    chat = 7001

    emulator.send("hi", chat_id=chat, user_id=chat)
    telegram_says(emulator, chat, "Hi!")
    emulator.send("my order is late!", chat_id=chat, user_id=chat)
    wait_until(lambda: len(telegram_texts(emulator, chat)) >= 2, SLOW)
    emulator.send("this is ridiculous!", chat_id=chat, user_id=chat)
    telegram_says(emulator, chat, replies.ESCALATED)

    ticket = ticket_in_channel(world)
    assert ticket.platform == "telegram" and ticket.reason == "negative sentiment persists"
    [post] = [b for b in api.posted(SUPPORT) if str(b.get("text", "")).startswith("New ticket")]
    shown = json.dumps(post["blocks"])
    assert "negative sentiment persists" in shown and "worsening" in shown
    assert "this is ridiculous!" in shown  # the last turns
    message_of_ticket = {"ts": thread_ts(ticket), "text": post["text"]}

    # Someone who is not an agent presses Claim: refused, privately.
    press(url, EVE, SUPPORT, message_of_ticket, desk_button(ticket, "claim"))
    wait_until(lambda: NOT_AN_AGENT in " ".join(ephemerals(api, EVE)), SLOW)
    assert world["tickets"].get(ticket.id).status == "open"

    press(url, DANA, SUPPORT, message_of_ticket, desk_button(ticket, "claim"))
    telegram_says(emulator, chat, "has picked up your request")
    assert world["tickets"].get(ticket.id).agent == DANA

    # While a person handles it the bot is silent; the customer's words reach the thread.
    before = len(telegram_texts(emulator, chat))
    emulator.send("hello? are you there", chat_id=chat, user_id=chat)
    wait_until(lambda: in_thread(api, ticket, "hello? are you there"), SLOW)

    # The Telegram bot process restarts mid-ticket; an agent reply sent meanwhile is not lost.
    world["telegram"].stop()
    deliver(
        url,
        message(SUPPORT, DANA, "So sorry! Your parcel ships today.", thread_ts(ticket), "channel"),
    )
    wait_until(
        lambda: "So sorry!" in " ".join(e.text for e in world["tickets"].get(ticket.id).transcript),
        SLOW,
    )
    world["telegram"].start()
    telegram_says(emulator, chat, "(support team): So sorry! Your parcel ships today.")
    texts = telegram_texts(emulator, chat)
    assert len(texts) == before + 1  # only the agent's message: the bot said nothing itself

    # A non-agent writing in the thread is refused and nothing reaches the customer.
    deliver(url, message(SUPPORT, EVE, "I can help too", thread_ts(ticket), "channel"))
    wait_until(lambda: "not sent" in " ".join(ephemerals(api, EVE)), SLOW)
    press(url, DANA, SUPPORT, message_of_ticket, desk_button(ticket, "resolve"))
    closing = telegram_says(emulator, chat, replies.RESOLVED)
    assert all("I can help too" not in t for t in telegram_texts(emulator, chat))
    keys = [k for row in closing["message"]["reply_markup"]["inline_keyboard"] for k in row]
    assert [k["text"] for k in keys] == list(replies.CSAT_LABELS)
    emulator.press(closing, keys[3]["callback_data"], user_id=chat)
    telegram_says(emulator, chat, replies.RATED)

    stored = world["tickets"].get(ticket.id)
    assert (stored.status, stored.agent, stored.rating) == ("resolved", DANA, 4)
    wait_until(lambda: in_thread(api, ticket, "rated this conversation 4/5"), SLOW)
    said = [e.text for e in stored.transcript if e.role == "customer"]
    assert said[-1] == "hello? are you there"


@pytest.mark.slow
def test_slack_customer_slack_agent(world: dict[str, Any]) -> None:
    api: SlackWebApi = world["api"]
    url: str = world["url"]
    dm = "D0CUSTOMER"
    first = message(dm, "U0CUSTOMER", "hi", None, "im")
    deliver(url, first)
    root = first["ts"]
    wait_until(lambda: any(t.startswith("Hi!") for t in posted_texts(api, dm)), SLOW)
    deliver(url, message(dm, "U0CUSTOMER", "I want a person", root, "im"))
    wait_until(lambda: replies.ESCALATED in posted_texts(api, dm), SLOW)

    ticket = ticket_in_channel(world)
    assert ticket.platform == "slack" and ticket.reason == "customer asked for a person"
    deliver(
        url,
        message(
            SUPPORT,
            DANA,
            "Hi, Dana from support here. How can I help?",
            thread_ts(ticket),
            "channel",
        ),
    )
    wait_until(lambda: any("Dana from support here" in t for t in posted_texts(api, dm)), SLOW)
    reply = next(b for b in api.posted(dm) if "Dana from support here" in str(b.get("text")))
    assert reply["thread_ts"] == root  # in the customer's own thread

    count = len(api.posted(dm))
    deliver(url, message(dm, "U0CUSTOMER", "my gift card does not work", root, "im"))
    wait_until(lambda: in_thread(api, ticket, "my gift card does not work"), SLOW)
    deliver(
        url,
        message(
            SUPPORT, DANA, "// internal: checking the card system", thread_ts(ticket), "channel"
        ),
    )
    wait_until(
        lambda: any(
            "checking the card system" in e.text for e in world["tickets"].get(ticket.id).transcript
        ),
        SLOW,
    )
    assert len(api.posted(dm)) == count  # neither the bot nor the internal note spoke

    press(
        url, DANA, SUPPORT, {"ts": thread_ts(ticket), "text": "t"}, desk_button(ticket, "handback")
    )
    wait_until(lambda: replies.HANDED_BACK in posted_texts(api, dm), SLOW)
    closing = next(b for b in api.posted(dm) if b.get("text") == replies.HANDED_BACK)
    blocks = (
        closing["blocks"] if isinstance(closing["blocks"], list) else json.loads(closing["blocks"])
    )
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert len(buttons) == 5
    press(
        url,
        "U0CUSTOMER",
        dm,
        {"ts": timestamp(), "thread_ts": root, "text": closing["text"]},
        buttons[4],
    )
    wait_until(lambda: replies.RATED in posted_texts(api, dm), SLOW)
    stored = world["tickets"].get(ticket.id)
    assert (stored.status, stored.rating) == ("handed_back", 5)
