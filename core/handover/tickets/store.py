"""Support tickets: the durable record of a conversation handed to a person.

A ticket is one row of fields plus an append-only list of entries (the transcript), so a
customer message relayed while an agent claims the ticket never overwrites either change.
Field changes go through `update` with a function of the current ticket: it runs inside a
transaction (SQLite) or an optimistic WATCH loop (Redis), so "claim only if still open" holds
across processes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol

import redis
from pydantic import BaseModel, ConfigDict

from core.infra.sqlite_file import SqliteFile
from core.state.store import StoreUnavailable

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


class Ticket(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    conversation_id: str
    customer: str  # the customer's user id on their platform
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

    def list(self, statuses: tuple[TicketStatus, ...] = ACTIVE, limit: int = 100) -> list[Ticket]:
        """Tickets in these statuses, oldest first."""
        ...


def _fields(ticket: Ticket) -> str:
    return ticket.model_dump_json(exclude={"transcript"})


# -- SQLite -----------------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, status TEXT NOT NULL,
    agent_thread TEXT, created REAL NOT NULL, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tickets_conversation ON tickets (conversation_id, status);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, created);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_thread ON tickets (agent_thread);
CREATE TABLE IF NOT EXISTS ticket_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT NOT NULL, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ticket_entries_ticket ON ticket_entries (ticket_id, seq);
"""


class SqliteTicketStore:
    """Tickets in the same SQLite file as conversation state (own tables), WAL mode."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.file = SqliteFile(path, SCHEMA, "ticket store", busy_timeout_s)

    def create(self, ticket: Ticket) -> None:
        with self.file.transaction() as db:
            db.execute(
                "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?)",
                (
                    ticket.id,
                    ticket.conversation_id,
                    ticket.status,
                    ticket.agent_thread,
                    ticket.created_at,
                    _fields(ticket),
                ),
            )
            db.executemany(
                "INSERT INTO ticket_entries (ticket_id, entry) VALUES (?, ?)",
                [(ticket.id, entry.model_dump_json()) for entry in ticket.transcript],
            )

    def get(self, ticket_id: str) -> Ticket | None:
        with self.file.guard():
            row = (
                self.file.connection()
                .execute("SELECT fields FROM tickets WHERE id = ?", (ticket_id,))
                .fetchone()
            )
        return None if row is None else self._assemble(row[0])

    def append(self, ticket_id: str, entry: TicketEntry) -> None:
        with self.file.transaction() as db:
            db.execute(
                "INSERT INTO ticket_entries (ticket_id, entry) VALUES (?, ?)",
                (ticket_id, entry.model_dump_json()),
            )

    def update(self, ticket_id: str, change: Change) -> Ticket | None:
        with self.file.transaction() as db:
            row = db.execute("SELECT fields FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
            if row is None:
                return None
            current = Ticket.model_validate_json(row[0])
            new = change(current)
            if new is None:
                return None
            new = Ticket.model_validate(new.model_dump() | {"id": current.id, "transcript": ()})
            db.execute(
                "UPDATE tickets SET status = ?, agent_thread = ?, fields = ? WHERE id = ?",
                (new.status, new.agent_thread, _fields(new), ticket_id),
            )
        return self.get(ticket_id)

    def active_for(self, conversation_id: str) -> Ticket | None:
        with self.file.guard():
            row = (
                self.file.connection()
                .execute(
                    "SELECT fields FROM tickets WHERE conversation_id = ? AND status IN (?, ?) "
                    "ORDER BY created DESC LIMIT 1",
                    (conversation_id, *ACTIVE),
                )
                .fetchone()
            )
        return None if row is None else self._assemble(row[0])

    def by_agent_thread(self, agent_thread: str) -> Ticket | None:
        with self.file.guard():
            row = (
                self.file.connection()
                .execute("SELECT fields FROM tickets WHERE agent_thread = ?", (agent_thread,))
                .fetchone()
            )
        return None if row is None else self._assemble(row[0])

    def list(self, statuses: tuple[TicketStatus, ...] = ACTIVE, limit: int = 100) -> list[Ticket]:
        marks = ", ".join("?" for _ in statuses)
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute(
                    f"SELECT fields FROM tickets WHERE status IN ({marks}) "
                    "ORDER BY created LIMIT ?",
                    (*statuses, limit),
                )
                .fetchall()
            )
        return [self._assemble(row[0]) for row in rows]

    def _assemble(self, fields: str) -> Ticket:
        ticket = Ticket.model_validate_json(fields)
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute(
                    "SELECT entry FROM ticket_entries WHERE ticket_id = ? ORDER BY seq",
                    (ticket.id,),
                )
                .fetchall()
            )
        entries = tuple(TicketEntry.model_validate_json(row[0]) for row in rows)
        return ticket.model_copy(update={"transcript": entries})



# -- Redis ------------------------------------------------------------------------------------


class RedisTicketStore:
    """Tickets in Redis: a string of fields and a list of entries per ticket, plus indexes.
    Nothing expires: a ticket is a record the support team may need long after it closed.

    Keys: {prefix}:ticket:{id} (fields JSON), {prefix}:ticket-entries:{id} (list),
    {prefix}:tickets:{status} (sorted set by creation time), {prefix}:ticket-by-conversation:{id},
    {prefix}:ticket-by-thread:{ref}.
    """

    def __init__(self, url: str, prefix: str = "concierge", socket_timeout_s: float = 2.0) -> None:
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=socket_timeout_s
        )

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def create(self, ticket: Ticket) -> None:
        with self._guard():
            pipe = self.client.pipeline(transaction=True)
            pipe.set(self.key("ticket", ticket.id), _fields(ticket))
            if ticket.transcript:
                pipe.rpush(
                    self.key("ticket-entries", ticket.id),
                    *(entry.model_dump_json() for entry in ticket.transcript),
                )
            pipe.zadd(self.key("tickets", ticket.status), {ticket.id: ticket.created_at})
            self._index(pipe, None, ticket)
            pipe.execute()

    def get(self, ticket_id: str) -> Ticket | None:
        with self._guard():
            pipe = self.client.pipeline(transaction=True)
            pipe.get(self.key("ticket", ticket_id))
            pipe.lrange(self.key("ticket-entries", ticket_id), 0, -1)
            fields, entries = pipe.execute()
        if fields is None:
            return None
        ticket = Ticket.model_validate_json(fields)
        transcript = tuple(TicketEntry.model_validate_json(raw) for raw in entries)
        return ticket.model_copy(update={"transcript": transcript})

    def append(self, ticket_id: str, entry: TicketEntry) -> None:
        with self._guard():
            self.client.rpush(self.key("ticket-entries", ticket_id), entry.model_dump_json())

    def update(self, ticket_id: str, change: Change) -> Ticket | None:
        key = self.key("ticket", ticket_id)
        with self._guard(), self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    if raw is None:
                        return None
                    current = Ticket.model_validate_json(raw)
                    new = change(current)
                    if new is None:
                        return None
                    new = Ticket.model_validate(
                        new.model_dump() | {"id": current.id, "transcript": ()}
                    )
                    pipe.multi()
                    pipe.set(key, _fields(new))
                    if new.status != current.status:
                        pipe.zrem(self.key("tickets", current.status), ticket_id)
                        pipe.zadd(self.key("tickets", new.status), {ticket_id: new.created_at})
                    self._index(pipe, current, new)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue  # someone else changed it first: recompute from their version
        return self.get(ticket_id)

    def active_for(self, conversation_id: str) -> Ticket | None:
        with self._guard():
            ticket_id = self.client.get(self.key("ticket-by-conversation", conversation_id))
        if ticket_id is None:
            return None
        ticket = self.get(_text(ticket_id))
        return ticket if ticket is not None and ticket.active else None

    def by_agent_thread(self, agent_thread: str) -> Ticket | None:
        with self._guard():
            ticket_id = self.client.get(self.key("ticket-by-thread", agent_thread))
        return None if ticket_id is None else self.get(_text(ticket_id))

    def list(self, statuses: tuple[TicketStatus, ...] = ACTIVE, limit: int = 100) -> list[Ticket]:
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for status in statuses:
                pipe.zrange(self.key("tickets", status), 0, limit - 1, withscores=True)
            found = [pair for chunk in pipe.execute() for pair in chunk]
        found.sort(key=lambda pair: pair[1])
        tickets = (self.get(_text(raw)) for raw, _ in found[:limit])
        return [ticket for ticket in tickets if ticket is not None]

    def _index(self, pipe: redis.client.Pipeline, old: Ticket | None, new: Ticket) -> None:
        by_conversation = self.key("ticket-by-conversation", new.conversation_id)
        if new.active:
            pipe.set(by_conversation, new.id)
        elif old is not None and old.active:
            pipe.delete(by_conversation)
        if new.agent_thread and (old is None or old.agent_thread != new.agent_thread):
            pipe.set(self.key("ticket-by-thread", new.agent_thread), new.id)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            scheme, _, rest = self.url.partition("://")
            where = f"{scheme}://{rest.rpartition('@')[2]}"
            raise StoreUnavailable(f"Redis at {where} is unavailable: {exc}") from exc


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def new_ticket_id(now: float | None = None) -> str:
    """Short, sortable and unique enough to read out to a customer: T-20261129-3f9a1c07."""
    stamp = time.strftime("%Y%m%d", time.gmtime(now if now is not None else time.time()))
    return f"T-{stamp}-{secrets.token_hex(4)}"
