"""Both chat adapters on one real conversation core and one state store.

Telegram runs against the telegram-test-api emulator, Slack receives signed HTTP events and
posts to a stand-in Web API; behind both is the real `Conversation` with the SQLite state store
and the demo store (catalog, orders, knowledge). Understanding and recommendation are small
deterministic implementations of core's protocols (the trained ones live in their own tests):
the point here is the whole path platform -> adapter -> core -> store -> adapter -> platform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from pydantic import SecretStr

from bots import telegram
from bots.ledger.sqlite import SqliteLedger
from bots.slack import customers as slack
from core.infra.settings import Settings
from core.shop.catalog import Catalog
from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import load_shop
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from core.turn.conversation import Conversation, Services
from core.turn.recommendation import Evidence, RecommendationRequest, Suggestion
from core.turn.understanding import Intent, Slots, Understanding
from tests.bots.peers import (
    BOT_USER,
    TEAM,
    LoopThread,
    SlackWebApi,
    TelegramEmulator,
    event_body,
    free_port,
    post_bytes,
    serve_on,
    signed_headers,
    start_polling,
    wait_for,
)

TOKEN = "7000:e2e-token"
SECRET = "e2e-signing-secret"
ASK = "I need a waterproof jacket"
SLACK_ASK = "a jacket for the rain, please"


class WordUnderstander:
    """A product request when the message names a category word; small talk otherwise."""

    def understand(self, text: str, state: ConversationState) -> Understanding:
        if "jacket" in text.lower():
            slots = Slots(category="outerwear", attributes=("waterproof",), terms=("jacket",))
            return Understanding(intent=Intent.RECOMMEND, slots=slots, confidence=0.9, source="e2e")
        return Understanding(intent=Intent.GREETING, confidence=0.9, source="e2e")


@dataclass
class RatingRecommender:
    """Catalog filter, best rated first."""

    catalog: Catalog

    def recommend(self, request: RecommendationRequest) -> Sequence[Suggestion]:
        items = sorted(
            (
                p
                for p in self.catalog.all()
                if p.in_stock
                and p.id not in request.exclude
                and (request.category is None or p.category == request.category)
            ),
            key=lambda p: (-p.rating, p.id),
        )
        return [
            Suggestion(
                item_id=p.id,
                title=p.title,
                price=p.price,
                score=p.rating,
                evidence=Evidence(price=p.price, rating=p.rating, review_count=p.review_count),
            )
            for p in items[: request.k]
        ]


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> tuple[Conversation, SqliteStateStore]:
    demo = load_shop(DEFAULT_DEMO_DIR)
    store = SqliteStateStore(tmp_path_factory.mktemp("state") / "concierge.sqlite3")
    services = Services(
        store=store,
        understander=WordUnderstander(),
        recommender=RatingRecommender(demo.catalog),
        catalog=demo.catalog,
        orders=demo.orders,
        knowledge=demo.knowledge,
    )
    return Conversation(services), store


@pytest.fixture(scope="module")
def adapters(core, tmp_path_factory) -> Iterator[tuple[TelegramEmulator, SlackWebApi, str]]:
    conversation, _ = core
    ledger = SqliteLedger(tmp_path_factory.mktemp("ledger") / "ledger.sqlite3", 3600)
    emulator = TelegramEmulator(TOKEN).start()
    api = SlackWebApi().start()
    port = free_port()
    settings = Settings(
        telegram_token=SecretStr(TOKEN),
        telegram_base_url=emulator.url,
        slack_bot_token=SecretStr("xoxb-e2e"),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=api.base_url,
        slack_port=port,
    )
    bot = telegram.telegram_adapter(settings, conversation.handle, ledger).application
    app = slack.slack_adapter(settings, conversation.handle, ledger)
    loop = LoopThread()

    async def start() -> web.AppRunner:
        await start_polling(bot)
        return await serve_on(slack.http_app(app, settings), port)

    async def stop(runner: web.AppRunner) -> None:
        assert bot.updater is not None
        await bot.updater.stop()
        await bot.stop()
        await bot.shutdown()
        await runner.cleanup()

    runner = loop.run(start())
    yield emulator, api, f"http://127.0.0.1:{port}{settings.slack_path}"
    loop.run(stop(runner))
    loop.close()
    api.stop()
    emulator.stop()


def signed_post(url: str, data: bytes, content_type: str = "application/json") -> int:
    return post_bytes(url, data, signed_headers(SECRET, data, content_type=content_type))[0]


def test_customers_on_both_platforms_share_one_core_without_mixing(adapters, core):
    emulator, api, slack_url = adapters
    _, store = core

    # Telegram: a request, then "Details" on the first suggestion.
    emulator.send(ASK, chat_id=6001, user_id=6001)
    [suggestions] = wait_for(lambda: emulator.bot_messages(6001), 1)
    keys = [b for row in suggestions["message"]["reply_markup"]["inline_keyboard"] for b in row]
    assert suggestions["message"]["text"].startswith("Here are some ideas")
    details = next(k for k in keys if k["callback_data"].startswith("details:"))
    emulator.press(suggestions, details["callback_data"], user_id=6001)
    follow_up = wait_for(lambda: emulator.bot_messages(6001), 2)[1]
    telegram_state = store.load("telegram:6001")
    first = telegram_state.last_shown[0]
    assert first.title in follow_up["message"]["text"]
    assert telegram_state.platform == "telegram" and telegram_state.user_id == "telegram:6001"
    assert [f.kind for f in telegram_state.feedback] == ["details"]

    # Slack: a similar request in a channel thread, then "Not for me" on the first suggestion.
    ts = "1700009000.000100"
    mention = {
        "type": "app_mention",
        "user": "U9",
        "text": f"<@{BOT_USER}> {SLACK_ASK}",
        "ts": ts,
        "channel": "C9",
        "event_ts": ts,
        "client_msg_id": "e2e-1",
    }
    assert signed_post(slack_url, json.dumps(event_body(mention, "EvE2E1")).encode()) == 200
    [post] = wait_for(lambda: api.posted("C9"), 1)
    assert post["thread_ts"] == ts and post["text"].startswith("Here are some ideas")
    skip = next(
        e
        for b in post["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["value"].startswith("skip:")
    )
    action: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": "U9", "team_id": TEAM},
        "channel": {"id": "C9"},
        "container": {"message_ts": "1700009001.000001", "thread_ts": ts},
        "message": {"ts": "1700009001.000001", "thread_ts": ts, "text": post["text"]},
        "actions": [
            {
                "action_id": skip["action_id"],
                "value": skip["value"],
                "action_ts": "1700009002.000001",
                "type": "button",
            }
        ],
    }
    data = urlencode({"payload": json.dumps(action)}).encode()
    assert signed_post(slack_url, data, "application/x-www-form-urlencoded") == 200
    second = wait_for(lambda: api.posted("C9"), 2)[1]
    assert second["thread_ts"] == ts and second["text"].startswith("Got it, no more")
    slack_state = store.load(f"slack:{TEAM}:C9:{ts}@U9")  # a member of the channel
    assert slack_state.platform == "slack" and slack_state.user_id == f"slack:{TEAM}:U9"
    assert [f.kind for f in slack_state.feedback] == ["not_for_me"]

    # One store, two conversations, each with only its own customer's turns.
    telegram_said = {t.text for t in telegram_state.transcript if t.role == "customer"}
    slack_said = {t.text for t in slack_state.transcript if t.role == "customer"}
    assert ASK in telegram_said and SLACK_ASK not in telegram_said
    assert SLACK_ASK in slack_said and ASK not in slack_said
    assert store.load("telegram:6001").feedback == telegram_state.feedback  # untouched by Slack
