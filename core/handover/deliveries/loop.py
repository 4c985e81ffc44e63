"""The receiving end of a topic: a background loop that hands each delivery to the adapter."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.handover.deliveries.store import Delivery, DeliveryQueue
from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.turn.messages import Reply

log = logging.getLogger(__name__)

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
