"""Messages between processes during a hand-over: agent replies to customers, ticket news to agents.

An agent answers in one process (the agent console, the agent-side chat app) while the
customer's chat runs in another. Each message is a `Delivery` put on a topic: one per platform
whose bot process serves all of its customers, one per conversation for the terminal (every
terminal chat is its own process), and `AGENTS_TOPIC` for the agent side. A `Deliveries` loop in
the receiving process takes them, hands each to the adapter's callback and acknowledges it.

Delivery is at least once (a taken delivery that is not acknowledged within the lease is taken
again) and deduplicated: putting the same id twice stores it once, and an acknowledged id is
never handed out again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import redis
from pydantic import BaseModel, ConfigDict

from core.infra.logs import event
from core.turn.messages import Button, Reply
from core.infra.sqlite_file import SqliteFile
from core.state.store import StoreUnavailable

log = logging.getLogger(__name__)

AGENTS_TOPIC = "agents"
# Platforms where each chat is its own process: its deliveries go to a topic of its own.
PROCESS_PER_CHAT = frozenset({"terminal"})

DeliveryKind = Literal[
    "reply",  # to a customer: an agent's message, an update, the rating request
    "ticket_opened",  # to agents: a new ticket
    "customer_message",  # to agents: the customer wrote while the ticket is open
    "ticket_changed",  # to agents: claimed, resolved, handed back, rated
    "reminder",  # to agents: nobody has claimed a ticket within the SLA
]


def customer_topic(platform: str, conversation_id: str) -> str:
    """The topic a conversation's replies are delivered through."""
    if platform in PROCESS_PER_CHAT:
        return f"{platform}:{conversation_id}"
    return platform


class Delivery(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str  # the deduplication key: the same id is delivered once
    topic: str
    kind: DeliveryKind
    conversation_id: str
    ticket_id: str | None = None
    text: str = ""
    buttons: tuple[tuple[str, str], ...] = ()  # (label, payload)
    thread_id: str | None = None
    author: str | None = None  # the agent who wrote it, for agent replies
    created_at: float

    def reply(self) -> Reply:
        buttons = tuple(Button(label, payload) for label, payload in self.buttons)
        return Reply(self.text, buttons, self.thread_id, self.conversation_id)


@dataclass(frozen=True)
class Taken:
    """A delivery handed to one consumer; `receipt` acknowledges it."""

    receipt: str
    delivery: Delivery


class DeliveryQueue(Protocol):
    def put(self, delivery: Delivery) -> bool:
        """Queue a delivery; False when one with the same id was queued before."""
        ...

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        """Deliveries due on this topic, leased to the caller; waits up to `wait_s` for one."""
        ...

    def ack(self, topic: str, taken: Taken) -> None:
        """The delivery reached its recipient: never hand it out again."""
        ...


DEDUP_TTL_S = 7 * 24 * 3600  # how long a delivery id is remembered after it was queued
PURGE_EVERY = 500  # acknowledgements between clean-ups of long-delivered rows (SQLite)

# -- SQLite -----------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL,
    body TEXT NOT NULL, lease_until REAL NOT NULL DEFAULT 0, done_at REAL);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (topic, done_at, seq);
"""


class SqliteDeliveryQueue:
    """A table in the state file, polled by the receiving process."""

    def __init__(
        self, path: Path, lease_s: float = 30.0, poll_s: float = 0.05, busy_timeout_s: float = 5.0
    ) -> None:
        self.path = path
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.file = SqliteFile(path, SCHEMA, "delivery queue", busy_timeout_s)
        self._acks = 0

    def put(self, delivery: Delivery) -> bool:
        with self.file.transaction() as db:
            cursor = db.execute(
                "INSERT INTO deliveries (id, topic, body) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO NOTHING",
                (delivery.id, delivery.topic, delivery.model_dump_json()),
            )
            return cursor.rowcount == 1

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        deadline = time.monotonic() + wait_s
        while True:
            taken = self._take_now(topic, limit)
            if taken or time.monotonic() >= deadline:
                return taken
            time.sleep(self.poll_s)

    def ack(self, topic: str, taken: Taken) -> None:
        with self.file.transaction() as db:
            db.execute(
                "UPDATE deliveries SET done_at = ? WHERE id = ?", (time.time(), taken.receipt)
            )
        self._acks += 1
        if self._acks % PURGE_EVERY == 0:
            with self.file.transaction() as db:
                db.execute(
                    "DELETE FROM deliveries WHERE done_at IS NOT NULL AND done_at < ?",
                    (time.time() - DEDUP_TTL_S,),
                )

    def _take_now(self, topic: str, limit: int) -> list[Taken]:
        now = time.time()
        with self.file.transaction() as db:
            rows = db.execute(
                "SELECT id, body FROM deliveries WHERE topic = ? AND done_at IS NULL "
                "AND lease_until < ? ORDER BY seq LIMIT ?",
                (topic, now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET lease_until = ? WHERE id = ?",
                [(now + self.lease_s, row[0]) for row in rows],
            )
        return [Taken(row[0], Delivery.model_validate_json(row[1])) for row in rows]



# -- Redis ------------------------------------------------------------------------------------

GROUP = "consumers"
STREAM_MAXLEN = 100_000


class RedisDeliveryQueue:
    """A stream per topic read by a consumer group; unacknowledged entries are reclaimed.

    Keys: {prefix}:deliveries:{topic} (stream), {prefix}:delivery-queued:{id} and
    {prefix}:delivery-done:{id} (deduplication marks, expiring after a week).
    """

    def __init__(
        self,
        url: str,
        prefix: str = "concierge",
        lease_s: float = 30.0,
        consumer: str | None = None,
        socket_timeout_s: float = 5.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.lease_s = lease_s
        self.consumer = consumer or f"c-{threading.get_native_id()}-{time.monotonic_ns()}"
        self.socket_timeout_s = socket_timeout_s
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
        )
        self._groups: set[str] = set()

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def put(self, delivery: Delivery) -> bool:
        with self._guard():
            fresh = self.client.set(
                self.key("delivery-queued", delivery.id), 1, nx=True, ex=DEDUP_TTL_S
            )
            if not fresh:
                return False
            self.client.xadd(
                self.key("deliveries", delivery.topic),
                {"body": delivery.model_dump_json()},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
            return True

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        stream = self.key("deliveries", topic)
        with self._guard():
            self._ensure_group(stream)
            # Entries another consumer took but never acknowledged (it crashed) come first.
            _, entries, *_ = self.client.xautoclaim(
                stream,
                GROUP,
                self.consumer,
                min_idle_time=int(self.lease_s * 1000),
                start_id="0-0",
                count=limit,
            )
            if not entries:
                block = max(1, int(min(wait_s, self.socket_timeout_s - 0.5) * 1000))
                answer: Any = self.client.xreadgroup(
                    GROUP, self.consumer, {stream: ">"}, count=limit, block=block
                )
                entries = answer[0][1] if answer else []
            return self._fresh(stream, entries)

    def ack(self, topic: str, taken: Taken) -> None:
        with self._guard():
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.key("delivery-done", taken.delivery.id), 1, ex=DEDUP_TTL_S)
            pipe.xack(self.key("deliveries", topic), GROUP, taken.receipt)
            pipe.execute()

    def _fresh(self, stream: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Taken]:
        taken = [
            Taken(entry_id.decode(), Delivery.model_validate_json(body[b"body"]))
            for entry_id, body in entries
            if body
        ]
        if not taken:
            return []
        done = self.client.mget([self.key("delivery-done", t.delivery.id) for t in taken])
        finished = [t.receipt for t, mark in zip(taken, done, strict=True) if mark is not None]
        if finished:
            self.client.xack(stream, GROUP, *finished)
        return [t for t, mark in zip(taken, done, strict=True) if mark is None]

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            scheme, _, rest = self.url.partition("://")
            where = f"{scheme}://{rest.rpartition('@')[2]}"
            raise StoreUnavailable(f"Redis at {where} is unavailable: {exc}") from exc


# -- the consumer loop ------------------------------------------------------------------------

MAX_ATTEMPTS = 5  # a delivery the recipient keeps refusing is dropped (and logged) after this


@dataclass
class Deliveries:
    """Takes deliveries of one topic and hands each to `handle`; run it in the background.

    `handle` raising means "not delivered": the delivery is taken again once its lease ends.
    `tick` (optional) runs once per round, e.g. the escalation SLA sweep.
    """

    queue: DeliveryQueue
    topic: str
    handle: Callable[[Delivery], None]
    wait_s: float = 1.0
    tick: Callable[[], object] | None = None
    _attempts: dict[str, int] = field(default_factory=dict, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @classmethod
    def to_customers(
        cls,
        queue: DeliveryQueue,
        topic: str,
        send_reply: Callable[[str, Reply], None],
        **options: object,
    ) -> Deliveries:
        """A loop that delivers replies with the adapter's `send_reply(conversation_id, reply)`."""

        def handle(delivery: Delivery) -> None:
            send_reply(delivery.conversation_id, delivery.reply())

        return cls(queue, topic, handle, **options)  # type: ignore[arg-type]

    def poll(self) -> int:
        """One round: deliver what is due; returns how many were delivered."""
        delivered = 0
        for taken in self.queue.take(self.topic, wait_s=self.wait_s):
            delivery = taken.delivery
            try:
                self.handle(delivery)
            except Exception as exc:  # the recipient failed: retry after the lease
                attempts = self._attempts.get(delivery.id, 0) + 1
                self._attempts[delivery.id] = attempts
                give_up = attempts >= MAX_ATTEMPTS
                event(
                    log,
                    "delivery.dropped" if give_up else "delivery.failed",
                    logging.ERROR if give_up else logging.WARNING,
                    topic=self.topic,
                    delivery=delivery.id,
                    attempts=attempts,
                    error=str(exc)[:200],
                )
                if give_up:
                    self.queue.ack(self.topic, taken)
                    self._attempts.pop(delivery.id, None)
                continue
            self.queue.ack(self.topic, taken)
            self._attempts.pop(delivery.id, None)
            delivered += 1
            event(
                log,
                "delivery.done",
                topic=self.topic,
                delivery=delivery.id,
                kind=delivery.kind,
                ms=round((time.time() - delivery.created_at) * 1000, 1),
            )
        return delivered

    def run(self) -> None:
        """Poll until `stop()`; a store outage is logged and retried, never fatal."""
        while not self._stop.is_set():
            try:
                if self.tick is not None:
                    self.tick()
                self.poll()
            except StoreUnavailable as exc:
                event(
                    log,
                    "delivery.store_unavailable",
                    logging.ERROR,
                    topic=self.topic,
                    error=str(exc),
                )
                self._stop.wait(1.0)
            except Exception:  # a bug in a callback must not stop deliveries for everyone
                log.exception("delivery.loop_failed", extra={"fields": {"topic": self.topic}})
                self._stop.wait(1.0)

    def start(self) -> Deliveries:
        self._thread = threading.Thread(
            target=self.run, name=f"deliveries-{self.topic}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
