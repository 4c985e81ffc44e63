"""One suite, both delivery queues: SQLite (file) and Redis streams (the real server, DB 14)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from core.handover.deliveries.loop import MAX_ATTEMPTS, Deliveries
from core.handover.deliveries.redis import RedisDeliveryQueue
from core.handover.deliveries.sqlite import SqliteDeliveryQueue
from core.handover.deliveries.store import (
    AGENTS_TOPIC,
    DeadLetter,
    Delivery,
    DeliveryQueue,
    MaybeDelivered,
    customer_topic,
)
from core.infra.errors import StoreUnavailable
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


# -- faults: a put that fails half-way, a store that comes back empty, a recipient that keeps
# -- failing, a send slower than the lease ----------------------------------------------------


def test_redis_put_that_failed_half_way_can_be_repeated(redis_prefix: str) -> None:
    """The stream cannot take the entry (a key of the wrong type stands in for any failure
    of XADD): the put fails as a whole, so the sender's retry delivers it."""
    queue = RedisDeliveryQueue(REDIS_URL, redis_prefix, lease_s=LEASE_S)
    stream = queue.redis.key("deliveries", "chat")
    queue.redis.client.set(stream, "not a stream")
    with pytest.raises(StoreUnavailable):
        queue.put(delivery(1))
    queue.redis.client.delete(stream)
    assert queue.put(delivery(1))  # the retry is queued, not taken for a duplicate
    assert [t.delivery.id for t in queue.take("chat", wait_s=0.5)] == ["d1"]


def test_redis_that_came_back_empty_gets_its_consumer_group_again(redis_prefix: str) -> None:
    queue = RedisDeliveryQueue(REDIS_URL, redis_prefix, lease_s=LEASE_S)
    queue.put(delivery(1))
    queue.ack("chat", queue.take("chat", wait_s=0.5)[0])
    # What a restart without persistence or a FLUSHALL leaves: no stream, no group (the test
    # database is shared, so only this queue's keys go).
    queue.redis.client.delete(queue.redis.key("deliveries", "chat"))
    queue.put(delivery(2))
    [taken] = queue.take("chat", wait_s=0.5)
    assert taken.delivery.id == "d2"
    # Lost while being sent: this consumer still holds what it took (nobody else can have it).
    queue.redis.client.delete(queue.redis.key("deliveries", "chat"))
    assert queue.renew("chat", [taken]) == [taken]


def test_attempts_are_counted_by_the_store_across_restarts(queue: DeliveryQueue) -> None:
    """Each attempt in a fresh loop over a fresh queue, as after a restart: the fifth failure
    still gives up, the delivery is kept as a dead letter, and people are told."""
    queue.put(delivery(1))
    told: list[DeadLetter] = []

    def refuse(delivery: Delivery) -> None:
        raise ConnectionError("platform unreachable")

    for attempt in range(1, MAX_ATTEMPTS + 1):
        restarted = Deliveries(another(queue), "chat", refuse, wait_s=0.5, undelivered=told.append)
        assert restarted.poll() == 0
        assert len(told) == (attempt == MAX_ATTEMPTS)
        if attempt < MAX_ATTEMPTS:
            time.sleep(LEASE_S + 0.2)  # the lease ends: the delivery is due again
    [letter] = queue.dead_letters("chat")
    assert letter.delivery.id == "d1" and letter.attempts == MAX_ATTEMPTS
    assert "ConnectionError" in letter.reason
    assert told[0].delivery == letter.delivery
    time.sleep(LEASE_S + 0.2)
    assert another(queue).take("chat", wait_s=0.2) == []  # buried: never handed out again
    assert queue.dead_letters(AGENTS_TOPIC) == []  # kept per topic


def test_a_send_that_may_have_gone_out_is_not_sent_again(queue: DeliveryQueue) -> None:
    calls: list[str] = []
    told: list[DeadLetter] = []

    def time_out(delivery: Delivery) -> None:
        calls.append(delivery.id)
        raise MaybeDelivered("the send took too long")

    loop = Deliveries(queue, "chat", time_out, wait_s=0.2, undelivered=told.append)
    queue.put(delivery(1))
    assert loop.poll() == 0
    time.sleep(LEASE_S + 0.2)
    assert loop.poll() == 0
    assert calls == ["d1"]
    assert [t.delivery.id for t in told] == ["d1"]
    assert [d.delivery.id for d in queue.dead_letters("chat")] == ["d1"]


def test_a_send_slower_than_the_lease_is_delivered_once(queue: DeliveryQueue) -> None:
    """Two consumers on one topic; every send takes three leases. The first consumer holds
    both deliveries it took (the one it is sending and the one waiting behind it), so the
    second never sends either of them again."""
    sends: list[str] = []
    sending = threading.Event()

    def slow_send(delivery: Delivery) -> None:
        sending.set()
        time.sleep(3 * LEASE_S)
        sends.append(delivery.id)

    queue.put(delivery(1))
    queue.put(delivery(2))
    first = Deliveries(queue, "chat", slow_send, wait_s=0.1).start()
    assert sending.wait(5)
    second = Deliveries(another(queue), "chat", slow_send, wait_s=0.1).start()
    try:
        deadline = time.monotonic() + 15
        while len(sends) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(4 * LEASE_S)  # long enough for any duplicate to be sent
    finally:
        first.stop()
        second.stop()
    assert sorted(sends) == ["d1", "d2"]


def test_a_renewal_does_not_take_back_what_another_consumer_reclaimed(
    queue: DeliveryQueue,
) -> None:
    queue.put(delivery(1))
    [mine] = queue.take("chat", wait_s=0.5)
    assert queue.renew("chat", [mine]) == [mine]
    time.sleep(LEASE_S + 0.2)  # this consumer stalled past its lease
    other = another(queue)
    [theirs] = other.take("chat", wait_s=0.5)
    assert theirs.attempts == 2
    assert queue.renew("chat", [mine]) == []  # lost: not stolen back
    assert other.renew("chat", [theirs]) == [theirs]
