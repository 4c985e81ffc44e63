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
