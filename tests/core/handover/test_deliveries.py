"""One suite, both delivery queues: SQLite (file) and Redis streams (the real server, DB 14)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from core.handover.deliveries.loop import Deliveries
from core.handover.deliveries.redis import RedisDeliveryQueue
from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.deliveries.store import AGENTS_TOPIC, Delivery, DeliveryQueue, customer_topic
from core.turn.messages import Button, Reply
from tests.conftest import TEST_REDIS

REDIS_URL = TEST_REDIS
LEASE_S = 0.5


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> DeliveryQueue:
    if request.param == "sqlite":
        return SqliteDeliveryQueue(tmp_path / "state.sqlite3", lease_s=LEASE_S)
    return RedisDeliveryQueue(REDIS_URL, redis_prefix, lease_s=LEASE_S)


def another(queue: DeliveryQueue) -> DeliveryQueue:
    """A second consumer on the same storage (another process would have one)."""
    if isinstance(queue, SqliteDeliveryQueue):
        return SqliteDeliveryQueue(queue.path, lease_s=LEASE_S)
    assert isinstance(queue, RedisDeliveryQueue)
    return RedisDeliveryQueue(queue.redis.url, queue.redis.prefix, lease_s=LEASE_S)


def delivery(n: int, topic: str = "chat", text: str | None = None) -> Delivery:
    return Delivery(
        id=f"d{n}",
        topic=topic,
        kind="reply",
        conversation_id=f"conv{n}",
        ticket_id="T1",
        text=text or f"message {n}",
        created_at=time.time(),
    )


def test_put_take_ack_in_order(queue: DeliveryQueue) -> None:
    for n in range(3):
        assert queue.put(delivery(n))
    taken = queue.take("chat", wait_s=0.5)
    assert [t.delivery.text for t in taken] == ["message 0", "message 1", "message 2"]
    for item in taken:
        queue.ack("chat", item)
    assert queue.take("chat", wait_s=0.1) == []


def test_same_id_is_queued_once(queue: DeliveryQueue) -> None:
    assert queue.put(delivery(1))
    assert not queue.put(delivery(1, text="the agent's retried event"))
    taken = queue.take("chat", wait_s=0.5)
    assert [t.delivery.text for t in taken] == ["message 1"]


def test_topics_are_separate(queue: DeliveryQueue) -> None:
    queue.put(delivery(1, topic="chat"))
    queue.put(delivery(2, topic=AGENTS_TOPIC))
    assert [t.delivery.id for t in queue.take(AGENTS_TOPIC, wait_s=0.5)] == ["d2"]
    assert [t.delivery.id for t in queue.take("chat", wait_s=0.5)] == ["d1"]


def test_leased_delivery_goes_to_one_consumer_then_comes_back(queue: DeliveryQueue) -> None:
    queue.put(delivery(1))
    first = queue.take("chat", wait_s=0.5)
    assert len(first) == 1
    other = another(queue)
    assert other.take("chat", wait_s=0.1) == []  # leased to the first consumer
    time.sleep(LEASE_S + 0.2)  # the first consumer "crashed" without acknowledging
    again = other.take("chat", wait_s=0.5)
    assert [t.delivery.id for t in again] == ["d1"]
    other.ack("chat", again[0])
    time.sleep(LEASE_S + 0.2)
    assert queue.take("chat", wait_s=0.1) == []  # acknowledged: gone for everyone


def test_acknowledged_id_is_not_handed_out_even_if_requeued_late(queue: DeliveryQueue) -> None:
    queue.put(delivery(1))
    taken = queue.take("chat", wait_s=0.5)
    queue.ack("chat", taken[0])
    queue.put(delivery(1))
    assert queue.take("chat", wait_s=0.1) == []


def test_loop_hands_replies_to_the_adapter_callback(queue: DeliveryQueue) -> None:
    got: list[tuple[str, Reply]] = []
    loop = Deliveries.to_customers(queue, "chat", lambda c, r: got.append((c, r)), wait_s=0.1)
    queue.put(
        Delivery(
            id="x",
            topic="chat",
            kind="reply",
            conversation_id="conv9",
            text="How would you rate it?",
            buttons=(("★★★★★", "csat:5"),),
            thread_id="th1",
            created_at=time.time(),
        )
    )
    assert loop.poll() == 1
    assert got == [
        ("conv9", Reply("How would you rate it?", (Button("★★★★★", "csat:5"),), "th1", "conv9"))
    ]


def test_failed_send_is_retried_after_the_lease(queue: DeliveryQueue) -> None:
    calls: list[str] = []

    def flaky(delivery: Delivery) -> None:
        calls.append(delivery.id)
        if len(calls) == 1:
            raise ConnectionError("platform unreachable")

    loop = Deliveries(queue, "chat", flaky, wait_s=0.1)
    queue.put(delivery(1))
    assert loop.poll() == 0
    time.sleep(LEASE_S + 0.2)
    deadline = time.monotonic() + 5
    delivered = 0
    while not delivered and time.monotonic() < deadline:
        delivered = loop.poll()
    assert delivered == 1 and calls == ["d1", "d1"]


def _produce(kind: str, where: str, prefix: str, count: int) -> None:
    queue: DeliveryQueue = (
        SqliteDeliveryQueue(Path(where)) if kind == "sqlite" else RedisDeliveryQueue(where, prefix)
    )
    for n in range(count):
        queue.put(delivery(n))
        time.sleep(0.01)


def test_background_loop_receives_from_another_process(queue: DeliveryQueue) -> None:
    kind = "sqlite" if isinstance(queue, SqliteDeliveryQueue) else "redis"
    where = str(queue.path) if isinstance(queue, SqliteDeliveryQueue) else REDIS_URL
    prefix = queue.redis.prefix if isinstance(queue, RedisDeliveryQueue) else ""
    got: list[str] = []
    done = threading.Event()

    def send(conversation_id: str, reply: Reply) -> None:
        got.append(reply.text)
        if len(got) == 20:
            done.set()

    loop = Deliveries.to_customers(queue, "chat", send, wait_s=0.2).start()
    # spawn, not fork: the delivery loop's thread may be inside SQLite at the moment of a fork,
    # and a child that inherits a held SQLite mutex hangs.
    producer = multiprocessing.get_context("spawn").Process(
        target=_produce, args=(kind, where, prefix, 20)
    )
    producer.start()
    try:
        assert done.wait(20)
    finally:
        loop.stop()
        producer.join(10)
    assert got == [f"message {n}" for n in range(20)]


def test_terminal_chats_get_a_topic_each() -> None:
    assert customer_topic("terminal", "terminal:u1:ab") != customer_topic("terminal", "terminal:u2")
    assert customer_topic("web", "web:1") == customer_topic("web", "web:2") == "web"


def test_sqlite_forgets_long_delivered_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import core.handover.deliveries.sqlite

    monkeypatch.setattr(core.handover.deliveries.sqlite, "PURGE_EVERY", 2)
    queue = SqliteDeliveryQueue(tmp_path / "state.sqlite3")
    for n in range(2):
        queue.put(delivery(n))
    taken = queue.take("chat", wait_s=0.1)
    queue.ack("chat", taken[0])
    monkeypatch.setattr(core.handover.deliveries.sqlite, "DEDUP_TTL_S", -1.0)  # "a week later"
    queue.ack("chat", taken[1])
    rows = sqlite3.connect(queue.path).execute("SELECT count(*) FROM deliveries").fetchone()
    assert rows == (0,)
