"""A state store that is restarting when a message arrives: the turn waits for it (bounded)
instead of answering "send it again". A real `redis-server` on a port of its own comes up while
the turn is waiting; with no wait allowed, the customer is told the store is down."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import pytest

from core.shop.demo.generator import DEFAULT_DEMO_DIR
from core.shop.files import load_shop
from core.state.redis import RedisStateStore
from core.turn import replies
from core.turn.conversation import Conversation, Services
from core.turn.messages import CollectingOutbox, Incoming
from core.turn.understanding import Intent
from tests.conftest import free_port
from tests.core.turn.test_conversation import FilteringRecommender, ScriptedUnderstander, says

REDIS_SERVER = "/usr/bin/redis-server"


@pytest.fixture
def late_redis() -> Iterator[tuple[str, threading.Event]]:
    """A Redis URL nobody answers yet, and an event that starts the server (in a thread, after
    the test's turn began)."""
    port = free_port()
    start = threading.Event()
    servers: list[subprocess.Popen[bytes]] = []

    def serve() -> None:
        if start.wait(30):
            servers.append(subprocess.Popen(
                [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{port}/0", start
    start.set()
    thread.join(5)
    for server in servers:
        server.terminate()
        server.wait(10)


def conversation(url: str, store_wait_s: float) -> Conversation:
    shop = load_shop(DEFAULT_DEMO_DIR)
    services = Services(
        store=RedisStateStore(url, "outage-test", timeout_s=0.5),
        understander=ScriptedUnderstander({"hello": says(Intent.GREETING)}),
        recommender=FilteringRecommender(shop.catalog),
        catalog=shop.catalog,
        orders=shop.orders,
        knowledge=shop.knowledge,
    )
    return Conversation(services, store_wait_s=store_wait_s)


def test_a_store_coming_back_within_the_wait_answers_the_turn(late_redis) -> None:
    url, start = late_redis
    chat = conversation(url, store_wait_s=20.0)
    threading.Timer(0.5, start.set).start()  # the store comes back while the turn waits
    outbox = CollectingOutbox()
    chat.handle(Incoming("terminal:outage", "terminal:u1", "hello"), outbox)
    assert [r.text for r in outbox.replies] == [replies.GREETING]
    assert chat.services.store.load("terminal:outage").turns == 1  # the turn ran and was saved


def test_a_store_still_down_after_the_wait_is_said_so(late_redis) -> None:
    url, _never = late_redis
    chat = conversation(url, store_wait_s=0.5)
    outbox = CollectingOutbox()
    chat.handle(Incoming("terminal:outage", "terminal:u1", "hello"), outbox)
    assert [r.text for r in outbox.replies] == [replies.STORE_DOWN]
