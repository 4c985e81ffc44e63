"""The receiving end of a topic: a background loop that hands each delivery to the adapter.

While the adapter works on a delivery, the loop renews the leases of the deliveries it holds (a
thread beside it, every third of the lease), so a send slower than the lease is not taken and
sent again by another consumer. A delivery the recipient refused `MAX_ATTEMPTS` times (counted
by the store, across restarts), or whose send may have gone out without finishing
(`MaybeDelivered`), is not retried: it becomes a dead letter, and `undelivered` tells people.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from core.handover.deliveries.store import (
    DeadLetter,
    Delivery,
    DeliveryQueue,
    MaybeDelivered,
    Taken,
)
from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.turn.messages import Reply

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # a delivery the recipient keeps refusing becomes a dead letter after this
RENEWALS_PER_LEASE = 3  # a held lease is renewed this often within its length


@dataclass
class Deliveries:
    """Takes deliveries of one topic and hands each to `handle`; run it in the background.

    `handle` raising means "not delivered": the delivery is taken again once its lease ends;
    raising `MaybeDelivered` means "it may have gone out": it is not sent again.
    `tick` (optional) runs once per round, e.g. the escalation SLA sweep.
    `undelivered` (optional) is told of each dead letter, e.g. to tell the agents.
    """

    queue: DeliveryQueue
    topic: str
    handle: Callable[[Delivery], None]
    wait_s: float = 1.0
    tick: Callable[[], object] | None = None
    undelivered: Callable[[DeadLetter], object] | None = None
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
        taken = self.queue.take(self.topic, wait_s=self.wait_s)
        if not taken:
            return 0
        delivered = 0
        with LeaseKeeper(self.queue, self.topic, taken) as leases:
            for item in taken:
                if not leases.holds(item):  # lapsed and taken by another consumer meanwhile
                    event(log, "delivery.lease_lost", logging.WARNING, topic=self.topic,
                          delivery=item.delivery.id)
                    continue
                delivered += self._deliver(item)
                leases.release(item)
        return delivered

    def _deliver(self, taken: Taken) -> bool:
        delivery = taken.delivery
        try:
            self.handle(delivery)
        except MaybeDelivered as exc:
            event(log, "delivery.uncertain", logging.ERROR, topic=self.topic,
                  delivery=delivery.id, error=str(exc)[:200])
            self._give_up(taken, "the send did not finish; it may have reached the recipient")
            return False
        except Exception as exc:  # the recipient failed: retry after the lease
            give_up = taken.attempts >= MAX_ATTEMPTS
            event(
                log,
                "delivery.dropped" if give_up else "delivery.failed",
                logging.ERROR if give_up else logging.WARNING,
                topic=self.topic,
                delivery=delivery.id,
                attempts=taken.attempts,
                error=str(exc)[:200],
            )
            if give_up:  # the error's type only: its text may name a URL or a payload
                self._give_up(taken, f"{taken.attempts} attempts failed ({type(exc).__name__})")
            return False
        self.queue.ack(self.topic, taken)
        event(
            log,
            "delivery.done",
            topic=self.topic,
            delivery=delivery.id,
            kind=delivery.kind,
            ms=round((time.time() - delivery.created_at) * 1000, 1),
        )
        return True

    def _give_up(self, taken: Taken, reason: str) -> None:
        """Tell people first, then bury: if the store fails in between, the delivery is taken
        again and given up on again (the agents' notice is deduplicated by its id)."""
        letter = DeadLetter(taken.delivery, reason, taken.attempts, time.time())
        if self.undelivered is not None:
            self.undelivered(letter)
        self.queue.bury(self.topic, taken, reason)
        event(log, "delivery.dead", logging.ERROR, topic=self.topic,
              delivery=taken.delivery.id, attempts=taken.attempts, reason=reason)

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


class LeaseKeeper:
    """Renews the leases of taken deliveries on a thread of its own until each is released.

    Every delivery of a round is held from the take until it is handled, not only the one being
    sent: a slow first send must not let the others' leases lapse either.
    """

    def __init__(self, queue: DeliveryQueue, topic: str, taken: Sequence[Taken]) -> None:
        self.queue = queue
        self.topic = topic
        self._held = {item.receipt: item for item in taken}
        self._lost: set[str] = set()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"leases-{topic}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()

    def holds(self, taken: Taken) -> bool:
        with self._lock:
            return taken.receipt not in self._lost

    def release(self, taken: Taken) -> None:
        with self._lock:
            self._held.pop(taken.receipt, None)

    def _renew(self) -> None:
        every = self.queue.lease_s / RENEWALS_PER_LEASE
        while not self._done.wait(every):
            with self._lock:
                held = list(self._held.values())
            if not held:
                return
            try:
                kept = {item.receipt for item in self.queue.renew(self.topic, held)}
            except StoreUnavailable as exc:  # try again next time; the lease may still hold
                event(log, "delivery.renew_failed", logging.WARNING, topic=self.topic,
                      error=str(exc))
                continue
            with self._lock:
                for item in held:
                    # One released while the renewal ran is finished (acknowledged), not lost.
                    if item.receipt not in kept and item.receipt in self._held:
                        del self._held[item.receipt]
                        self._lost.add(item.receipt)
