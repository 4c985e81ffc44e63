"""Support tickets: the durable record of a conversation handed to a person.

A ticket is one row of fields plus an append-only list of entries (the transcript), so a
customer message relayed while an agent claims the ticket never overwrites either change.
Field changes go through `update` with a function of the current ticket: it runs inside a
transaction (SQLite) or an optimistic WATCH loop (Redis), so "claim only if still open" holds
across processes.
"""

from __future__ import annotations

import builtins
import logging
import secrets
import time
from collections.abc import Callable
from typing import Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict

log = logging.getLogger(__name__)

TicketStatus = Literal["open", "claimed", "resolved", "handed_back"]
ACTIVE: tuple[TicketStatus, ...] = ("open", "claimed")
CLOSED: tuple[TicketStatus, ...] = ("resolved", "handed_back")


class TicketEntry(BaseModel):
    """One line of a ticket's transcript."""

    model_config = ConfigDict(frozen=True)

    role: Literal["customer", "assistant", "agent", "note"]
    text: str
    at: float  # unix seconds
    author: str | None = None  # the agent's id for agent lines and notes
    private: bool = False  # a personal reply (an order's details): shown to agents, no LLM


class Ticket(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    conversation_id: str
    customer: str  # the customer's user id on their platform
    verified_customer: str | None = None  # the store customer that user proved to be, if any
    platform: str
    reason: str
    sentiment_trend: tuple[str, ...] = ()  # recent customer sentiments, oldest first
    intents: tuple[str, ...] = ()  # intents seen in the conversation, oldest first
    products_shown: tuple[str, ...] = ()  # catalog ids shown before the hand-over
    transcript: tuple[TicketEntry, ...] = ()
    status: TicketStatus = "open"
    agent: str | None = None  # who claimed or closed it
    agent_name: str | None = None  # how the customer sees the agent's name
    rating: int | None = None  # the customer's 1-5 rating after it closed
    agent_thread: str | None = None  # where agents discuss it (a chat thread reference)
    created_at: float
    updated_at: float
    claimed_at: float | None = None
    closed_at: float | None = None
    rated_at: float | None = None
    reminded_at: float | None = None  # when the unclaimed-ticket reminder went out

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def who(self) -> str:
        """The customer as agents see them: verified as a store customer, or not."""
        if self.verified_customer:
            return f"{self.customer} (verified customer {self.verified_customer})"
        return f"{self.customer} (not verified)"


class TicketFacts(NamedTuple):
    """A ticket as the dashboard counts it: no transcript, nobody's id."""

    created_at: float
    status: str
    reason: str
    rating: int | None


# A change to a ticket: the new ticket, or None to leave it as it is (the change does not apply).
Change = Callable[[Ticket], "Ticket | None"]


class TicketStore(Protocol):
    """Where tickets live. Implementations: SQLite (embedded) and Redis (scaled)."""

    def create(self, ticket: Ticket) -> None:
        """Store a new ticket with its initial transcript."""
        ...

    def get(self, ticket_id: str) -> Ticket | None: ...

    def append(self, ticket_id: str, entry: TicketEntry) -> None:
        """Add one transcript entry; concurrent appends all land, in arrival order."""
        ...

    def update(self, ticket_id: str, change: Change) -> Ticket | None:
        """Apply `change` atomically; returns the stored result, or None if it did not apply."""
        ...

    def active_for(self, conversation_id: str) -> Ticket | None:
        """The open or claimed ticket of a conversation, if any."""
        ...

    def by_agent_thread(self, agent_thread: str) -> Ticket | None: ...

    def list(
        self, statuses: tuple[TicketStatus, ...] = ACTIVE, limit: int = 100, offset: int = 0
    ) -> list[Ticket]:
        """Tickets in these statuses, oldest first: `limit` of them after the first `offset`."""
        ...

    def counts(self) -> dict[TicketStatus, int]:
        """How many tickets are in each status."""
        ...

    def facts(self, since: float) -> builtins.list[TicketFacts]:
        """What the dashboard counts of every ticket created since this unix time."""
        ...

    def of_customer(self, customer: str) -> builtins.list[Ticket]:
        """Every ticket of this platform user, oldest first (for export and deletion)."""
        ...

    def anonymise(self, ticket_id: str) -> None:
        """Keep the ticket's counts (status, reason, rating, times) and drop what identifies the
        person: transcript entries, customer ids, the conversation id and agent thread link."""
        ...

    def purge(self, closed_before: float) -> int:
        """Delete every resolved or handed-back ticket closed before this unix time; how many."""
        ...


DELETED = "deleted"  # stands where an anonymised ticket named its customer


def anonymised(ticket: Ticket) -> Ticket:
    """What `anonymise` keeps of a ticket: what support counts (status, reason, rating, times,
    sentiments, intents, products) and nothing that leads back to the person."""
    return ticket.model_copy(
        update={
            "customer": DELETED,
            "verified_customer": None,
            "conversation_id": f"{DELETED}:{ticket.id}",
            "agent_thread": None,
            "transcript": (),
        }
    )


def fields_json(ticket: Ticket) -> str:
    """The ticket without its transcript, as stored next to the separately kept entries."""
    return ticket.model_dump_json(exclude={"transcript"})


def new_ticket_id(now: float | None = None) -> str:
    """Short, sortable and unique enough to read out to a customer: T-20261129-3f9a1c07."""
    stamp = time.strftime("%Y%m%d", time.gmtime(now if now is not None else time.time()))
    return f"T-{stamp}-{secrets.token_hex(4)}"
