"""Deliveries as Redis streams, one per topic, read by a consumer group.

What must not happen half-way happens in one step on the server: `put` queues the entry and
remembers its id in one script (a failure between the two would leave the id marked queued with
nothing in the stream: lost for good), `renew` checks the owner and extends its lease in one
script (renewing blindly could take back an entry another consumer reclaimed), and `ack` and
`bury` are MULTI/EXEC transactions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis

from core.handover.deliveries.store import DEDUP_TTL_S, DeadLetter, Delivery, Taken
from core.infra.logs import event
from core.infra.redis_client import RedisConnection, text

log = logging.getLogger(__name__)

GROUP = "consumers"
STREAM_MAXLEN = 100_000

T = TypeVar("T")

# KEYS: the queued mark, the stream. ARGV: the mark's TTL, the body, the stream's length cap.
# The entry first: if XADD fails (out of memory, a key of the wrong type) the script stops with
# nothing written, so repeating the put delivers it.
PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'body', ARGV[2])
redis.call('SET', KEYS[1], 1, 'EX', ARGV[1])
return 1
"""

# KEYS: the stream. ARGV: the group, this consumer, the entry ids. Resets the idle time of the
# entries this consumer still owns (JUSTID: the delivery count, our attempt counter, stays).
RENEW = """
local held = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    held[#held + 1] = ARGV[i]
  end
end
return held
"""


class RedisDeliveryQueue:
    """A stream per topic read by a consumer group; unacknowledged entries are reclaimed.

    Keys: {prefix}:deliveries:{topic} (stream), {prefix}:deliveries-dead:{topic} (dead letters,
    a stream trimmed to `DEDUP_TTL_S`), {prefix}:delivery-queued:{id} and
    {prefix}:delivery-done:{id} (deduplication marks, expiring after `DEDUP_TTL_S`).
    Attempts are the stream's own delivery counts (XPENDING), so a restart does not reset them.
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
        self._put = self.redis.client.register_script(PUT)
        self._renew = self.redis.client.register_script(RENEW)

    def put(self, delivery: Delivery) -> bool:
        keys = [self.redis.key("delivery-queued", delivery.id), self._stream(delivery.topic)]
        with self.redis.guard():
            fresh = self._put(keys, [DEDUP_TTL_S, delivery.model_dump_json(), STREAM_MAXLEN])
            return bool(fresh)

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        stream = self._stream(topic)
        with self.redis.guard():
            return self._with_group(stream, lambda: self._take(stream, limit, wait_s))

    def ack(self, topic: str, taken: Taken) -> None:
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.set(self.redis.key("delivery-done", taken.delivery.id), 1, ex=DEDUP_TTL_S)
            pipe.xack(self._stream(topic), GROUP, taken.receipt)
            # Delivered: the reply's text and its conversation are not kept in the stream.
            pipe.xdel(self._stream(topic), taken.receipt)
            pipe.execute()

    def renew(self, topic: str, taken: Sequence[Taken]) -> list[Taken]:
        if not taken:
            return []
        stream = self._stream(topic)
        with self.redis.guard():
            try:
                held = self._renew([stream], [GROUP, self.consumer, *(t.receipt for t in taken)])
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                # The server lost the stream with its group: no other consumer can hold these
                # entries, and this one still has them to deliver.
                return list(taken)
        receipts = {text(receipt) for receipt in held}
        return [t for t in taken if t.receipt in receipts]

    def bury(self, topic: str, taken: Taken, reason: str) -> DeadLetter:
        letter = DeadLetter(taken.delivery, reason, taken.attempts, time.time())
        oldest_kept = int((letter.at - DEDUP_TTL_S) * 1000)
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.xadd(
                self._dead(topic),
                {
                    "body": taken.delivery.model_dump_json(),
                    "reason": reason,
                    "attempts": taken.attempts,
                    "at": letter.at,
                },
                minid=oldest_kept,
                approximate=True,
            )
            pipe.set(self.redis.key("delivery-done", taken.delivery.id), 1, ex=DEDUP_TTL_S)
            pipe.xack(self._stream(topic), GROUP, taken.receipt)
            pipe.xdel(self._stream(topic), taken.receipt)
            pipe.execute()
        return letter

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        with self.redis.guard():
            entries: Any = self.redis.client.xrange(self._dead(topic), count=limit)
        return [
            DeadLetter(
                Delivery.model_validate_json(fields[b"body"]),
                text(fields[b"reason"]),
                int(fields[b"attempts"]),
                float(fields[b"at"]),
            )
            for _, fields in entries
        ]

    def _take(self, stream: str, limit: int, wait_s: float) -> list[Taken]:
        # Entries another consumer took but never acknowledged (it crashed) come first.
        _, entries, *_ = self.redis.client.xautoclaim(
            stream,
            GROUP,
            self.consumer,
            min_idle_time=int(self.lease_s * 1000),
            start_id="0-0",
            count=limit,
        )
        attempts = self._attempts(stream, entries)
        if not entries:
            block = max(1, int(min(wait_s, self.redis.timeout_s - 0.5) * 1000))
            answer: Any = self.redis.client.xreadgroup(
                GROUP, self.consumer, {stream: ">"}, count=limit, block=block
            )
            entries = answer[0][1] if answer else []
        return self._fresh(stream, entries, attempts)

    def _attempts(
        self, stream: str, entries: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> dict[str, int]:
        """The delivery counts of reclaimed entries (a first read counts 1, each claim one more)."""
        if not entries:
            return {}
        pipe = self.redis.client.pipeline(transaction=False)
        for entry_id, _ in entries:
            pipe.xpending_range(stream, GROUP, min=entry_id, max=entry_id, count=1)
        counts: dict[str, int] = {}
        for pending in pipe.execute():
            for row in pending:
                counts[text(row["message_id"])] = int(row["times_delivered"])
        return counts

    def _fresh(
        self,
        stream: str,
        entries: list[tuple[bytes, dict[bytes, bytes]]],
        attempts: dict[str, int],
    ) -> list[Taken]:
        taken = [
            Taken(
                entry_id.decode(),
                Delivery.model_validate_json(body[b"body"]),
                attempts.get(entry_id.decode(), 1),
            )
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

    def _with_group(self, stream: str, read: Callable[[], T]) -> T:
        """`read` with the stream's consumer group in place. A server that came back empty
        (restarted without persistence, flushed) has lost the group: it is created again and
        `read` retried once, rather than failing with NOGROUP until this process restarts."""
        self._ensure_group(stream)
        try:
            return read()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        event(log, "delivery.group_lost", logging.WARNING, stream=stream)
        self._groups.discard(stream)
        self._ensure_group(stream)
        return read()

    def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            self.redis.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    def _stream(self, topic: str) -> str:
        return self.redis.key("deliveries", topic)

    def _dead(self, topic: str) -> str:
        return self.redis.key("deliveries-dead", topic)
