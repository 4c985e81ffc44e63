"""Messages between processes during a hand-over: agent replies to customers, ticket news to agents.

An agent answers in one process (the agent console, the agent-side chat app) while the
customer's chat runs in another. Each message is a `Delivery` put on a topic: one per platform
whose bot process serves all of its customers, one per conversation for the terminal (every
terminal chat is its own process), and `AGENTS_TOPIC` for the agent side. A `Deliveries` loop in
the receiving process takes them, hands each to the adapter's callback and acknowledges it.

The guarantee: at least once, deduplicated, and never silently lost.

- `put` is atomic: the delivery is queued and its id remembered together, or neither (a failed
  put can be repeated); putting the same id again stores it once.
- A taken delivery is leased to one consumer; the loop renews the lease while the recipient
  works on it, so a slow send is not taken and sent again by another consumer. A delivery
  whose consumer died (no renewal, no acknowledgement) is taken again when its lease ends.
- An acknowledged id is never handed out again (a mark kept for `DEDUP_TTL_S`).
- Attempts are counted by the store (they survive a restart); after `MAX_ATTEMPTS` failed
  attempts, or a send whose outcome is unknown (`MaybeDelivered`), the delivery is not retried:
  it is kept among the topic's dead letters (`dead_letters`) and the agents are told.

Where a duplicate can still happen: a consumer that sent a delivery and then stopped (crash,
kill, the store unreachable) before its acknowledgement was stored; and a consumer stalled
longer than the lease without renewing (a frozen process, the store unreachable for that long),
whose delivery another consumer took meanwhile. Where a loss can: the store itself losing data
(Redis restarted without persistence drops what it held), which no consumer can see.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from core.turn.messages import Button, Reply

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
    "undelivered",  # to agents: a reply did not reach the customer (or may not have)
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
    attempts: int = 1  # times it was handed out, this one included (counted by the store)


@dataclass(frozen=True)
class DeadLetter:
    """A delivery given up on: kept for a person to see, never handed out again."""

    delivery: Delivery
    reason: str
    attempts: int
    at: float


class MaybeDelivered(Exception):
    """Raised by a recipient whose send may have gone out though it did not finish (it timed
    out mid-request): retrying could send it twice, so it is not retried, and a person is told.
    """


class DeliveryQueue(Protocol):
    lease_s: float  # how long a taken delivery is held for its consumer without a renewal

    def put(self, delivery: Delivery) -> bool:
        """Queue a delivery; False when one with the same id was queued before."""
        ...

    def take(self, topic: str, limit: int = 10, wait_s: float = 1.0) -> list[Taken]:
        """Deliveries due on this topic, leased to the caller; waits up to `wait_s` for one."""
        ...

    def ack(self, topic: str, taken: Taken) -> None:
        """The delivery reached its recipient: never hand it out again."""
        ...

    def renew(self, topic: str, taken: Sequence[Taken]) -> list[Taken]:
        """Extend the leases of deliveries this consumer holds (it is still working on them);
        returns those it still held (a lapsed lease may have gone to another consumer)."""
        ...

    def bury(self, topic: str, taken: Taken, reason: str) -> DeadLetter:
        """Give up on a delivery: keep it among the topic's dead letters, never hand it out
        again."""
        ...

    def dead_letters(self, topic: str, limit: int = 100) -> list[DeadLetter]:
        """The topic's dead letters, oldest first (kept for `DEDUP_TTL_S`)."""
        ...


DEDUP_TTL_S = 7 * 24 * 3600  # how long a delivery id is remembered after it was queued
