"""Conversation state: everything the core remembers between turns, as one immutable value.

A turn loads the state, computes a new one and saves it in one write, so a crash between two
turns never leaves half of a change behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

TRANSCRIPT_LIMIT = 30  # turns kept in the state; older ones live in tickets and logs only
SEEN_MESSAGES_LIMIT = 50  # platform message ids remembered to drop duplicate deliveries
SENTIMENT_LIMIT = 10
# The replies to the latest messages, sent again when a message comes back from an adapter's
# inbox after its turn was saved but before its replies went out (a crash in between).
ANSWERED_LIMIT = 5


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Turn(Frozen):
    role: Literal["customer", "assistant", "agent"]
    text: str
    at: float  # unix seconds
    intent: str | None = None
    private: bool = False  # a personal reply (an order, the account): never sent to an LLM


class ProductRequest(Frozen):
    """What the customer is currently looking for, accumulated over turns."""

    text: str = ""  # the request in the customer's words, most recent first
    category: str | None = None
    budget_min: float | None = None
    budget_max: float | None = None
    attributes: tuple[str, ...] = ()
    colors: tuple[str, ...] = ()
    sizes: tuple[str, ...] = ()
    like_item_id: str | None = None  # "more like this"


class ShownItem(Frozen):
    item_id: str
    title: str
    price: float
    position: int  # 1-based position in the reply that showed it


class FeedbackEvent(Frozen):
    item_id: str
    kind: Literal["more_like_this", "not_for_me", "details"]
    position: int
    at: float


class EscalationState(Frozen):
    status: Literal["none", "open", "claimed", "awaiting_rating"] = "none"
    ticket_id: str | None = None
    reason: str | None = None


class KeptReply(Frozen):
    """A reply as the state keeps it (the conversation it goes to is the state's own)."""

    text: str
    buttons: tuple[tuple[str, str], ...] = ()  # (label, payload)
    thread_id: str | None = None
    private: bool = False


class AnsweredMessage(Frozen):
    message_id: str
    replies: tuple[KeptReply, ...]


class ConversationState(Frozen):
    conversation_id: str
    user_id: str = ""  # the platform user (`telegram:<id>`, `slack:<team>:<user>`)
    customer_id: str | None = None  # the store customer verified for that user, this turn
    platform: str = "terminal"
    transcript: tuple[Turn, ...] = ()
    request: ProductRequest = ProductRequest()
    shown: tuple[str, ...] = ()  # every item id shown in this conversation
    last_shown: tuple[ShownItem, ...] = ()  # the latest suggestions, in display order
    feedback: tuple[FeedbackEvent, ...] = ()
    sentiments: tuple[str, ...] = ()  # most recent last
    intents: tuple[str, ...] = ()  # most recent last
    low_confidence_streak: int = 0
    not_for_me_streak: int = 0
    escalation: EscalationState = EscalationState()
    seen_message_ids: tuple[str, ...] = ()
    answered: tuple[AnsweredMessage, ...] = ()  # the latest ANSWERED_LIMIT, oldest first
    turns: int = 0  # customer turns handled so far
    # An order number asked for before the customer proved who they are: an e-mail address
    # sent next is checked against this order.
    order_to_verify: str | None = None
    # The logged slate of the latest suggestions while its outcome is still to come: the next
    # turn closes it with what was pressed, or nothing.
    open_slate: str | None = None
    slate_shown_at: float | None = None  # unix seconds: purchases since then close it too

    def with_turn(self, turn: Turn) -> ConversationState:
        return self.model_copy(update={"transcript": (*self.transcript, turn)[-TRANSCRIPT_LIMIT:]})


class LockTimeout(RuntimeError):
    """Another turn of the same conversation held the lock for too long."""


class LockLost(LockTimeout):
    """A save under a lock whose lease ran out (the holder stalled past it) and that another
    writer may have taken: nothing was written, so that writer's change stands. Like a lock
    timeout, the message's turn did not happen and can be tried again."""


LOCK_POLL_S = 0.01


def acquire(try_once: Callable[[], bool], conversation_id: str, timeout: float) -> None:
    """Call `try_once` until it takes the conversation's lock; LockTimeout after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not try_once():
        if time.monotonic() > deadline:
            raise LockTimeout(f"conversation {conversation_id} is busy")
        time.sleep(LOCK_POLL_S)


class StateStore(Protocol):
    """Where conversation state lives. Implementations: SQLite (embedded) and Redis (scaled)."""

    def load(self, conversation_id: str) -> ConversationState:
        """The saved state, or a fresh one for a conversation never seen."""
        ...

    def save(self, state: ConversationState) -> None:
        """Replace the saved state atomically. On a thread holding the conversation's lock,
        only while that lock is still this holder's (checked in the same atomic step):
        otherwise LockLost and nothing is written. Outside a lock, unconditionally."""
        ...

    def lock(self, conversation_id: str, timeout: float = 30.0) -> AbstractContextManager[None]:
        """Hold while a turn runs: one turn per conversation at a time, across processes. The
        lock is a lease renewed while held, so a crashed holder frees it and a slow one keeps
        it; LockTimeout if another holder keeps it longer than `timeout` seconds."""
        ...

    def conversations_of(self, user_id: str) -> list[str]:
        """Ids of every saved conversation of this platform user (for export and deletion)."""
        ...

    def delete(self, conversation_id: str) -> None:
        """Forget a conversation's state (and anything quarantined of it); no error if none."""
        ...

    def purge(self, idle_before: float) -> int:
        """Delete every conversation last saved before this unix time; how many were deleted."""
        ...
