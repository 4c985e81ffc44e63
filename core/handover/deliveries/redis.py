"""Deliveries as Redis streams, one per topic, read by a consumer group."""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from core.handover.deliveries.store import DEDUP_TTL_S, Delivery, Taken
from core.infra.redis_client import RedisConnection

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
        timeout_s: float = 5.0,  # longer than the default: a take blocks up to wait_s
    ) -> None:
        self.redis = RedisConnection(url, prefix, timeout_s)
        self.lease_s = lease_s
        self.consumer = consumer or f"c-{threading.get_native_id()}-{time.monotonic_ns()}"
        self._groups: set[str] = set()

    def put(self, delivery: Delivery) -> bool:
        with self.redis.guard():
            fresh = self.redis.client.set(
                self.redis.key("delivery-queued", delivery.id), 1, nx=True, ex=DEDUP_TTL_S
            )
            if not fresh:
                return False
            self.redis.client.xadd(
                self.redis.key("deliveries", delivery.topic),
                {"body": delivery.model_dump_json()},
                maxlen=STREAM_MAXLEN,
                approximate=True,
            )
            return True

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        stream = self.redis.key("deliveries", topic)
        with self.redis.guard():
            self._ensure_group(stream)
            # Entries another consumer took but never acknowledged (it crashed) come first.
            _, entries, *_ = self.redis.client.xautoclaim(
                stream,
                GROUP,
                self.consumer,
                min_idle_time=int(self.lease_s * 1000),
                start_id="0-0",
                count=limit,
            )
            if not entries:
                block = max(1, int(min(wait_s, self.redis.timeout_s - 0.5) * 1000))
                answer: Any = self.redis.client.xreadgroup(
                    GROUP, self.consumer, {stream: ">"}, count=limit, block=block
                )
                entries = answer[0][1] if answer else []
            return self._fresh(stream, entries)

    def ack(self, topic: str, taken: Taken) -> None:
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.set(self.redis.key("delivery-done", taken.delivery.id), 1, ex=DEDUP_TTL_S)
            pipe.xack(self.redis.key("deliveries", topic), GROUP, taken.receipt)
            # Delivered: the reply's text and its conversation are not kept in the stream.
            pipe.xdel(self.redis.key("deliveries", topic), taken.receipt)
            pipe.execute()

    def _fresh(self, stream: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Taken]:
        taken = [
            Taken(entry_id.decode(), Delivery.model_validate_json(body[b"body"]))
            for entry_id, body in entries
            if body
        ]
        if not taken:
            return []
        marks = [self.redis.key("delivery-done", t.delivery.id) for t in taken]
        done = self.redis.client.mget(marks)
        finished = [t.receipt for t, mark in zip(taken, done, strict=True) if mark is not None]
        if finished:
            self.redis.client.xack(stream, GROUP, *finished)
            self.redis.client.xdel(stream, *finished)
        return [t for t, mark in zip(taken, done, strict=True) if mark is None]

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            self.redis.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)
