"""Tickets in Redis: for several bot and agent processes on one or more hosts."""

from __future__ import annotations

import builtins
from collections.abc import Callable

import redis

from core.handover.tickets.store import (
    ACTIVE,
    CLOSED,
    Change,
    Ticket,
    TicketEntry,
    TicketFacts,
    TicketStatus,
    anonymised,
    fields_json,
)
from core.infra.redis_client import DEFAULT_TIMEOUT_S, RedisConnection, text, texts

PURGE_BATCH = 500  # candidates read at a time by `purge`


class RedisTicketStore:
    """Tickets in Redis: a string of fields and a list of entries per ticket, plus indexes.
    Nothing expires: a ticket is a record the support team may need long after it closed.

    Keys: {prefix}:ticket:{id} (fields JSON), {prefix}:ticket-entries:{id} (list),
    {prefix}:tickets:{status} (sorted set by creation time), {prefix}:ticket-by-conversation:{id},
    {prefix}:ticket-by-thread:{ref}, {prefix}:ticket-by-customer:{user} (sorted set by creation
    time), {prefix}:ticket-facts:all (hash: id -> what the dashboard counts of it).
    """

    def __init__(
        self, url: str, prefix: str = "concierge", timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self.redis = RedisConnection(url, prefix, timeout_s)

    def create(self, ticket: Ticket) -> None:
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.set(self.redis.key("ticket", ticket.id), fields_json(ticket))
            if ticket.transcript:
                pipe.rpush(
                    self.redis.key("ticket-entries", ticket.id),
                    *(entry.model_dump_json() for entry in ticket.transcript),
                )
            pipe.zadd(self.redis.key("tickets", ticket.status), {ticket.id: ticket.created_at})
            self._index(pipe, None, ticket)
            pipe.execute()

    def get(self, ticket_id: str) -> Ticket | None:
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=True)
            pipe.get(self.redis.key("ticket", ticket_id))
            pipe.lrange(self.redis.key("ticket-entries", ticket_id), 0, -1)
            fields, entries = pipe.execute()
        if fields is None:
            return None
        ticket = Ticket.model_validate_json(fields)
        transcript = tuple(TicketEntry.model_validate_json(raw) for raw in entries)
        return ticket.model_copy(update={"transcript": transcript})

    def append(self, ticket_id: str, entry: TicketEntry) -> None:
        with self.redis.guard():
            self.redis.client.rpush(
                self.redis.key("ticket-entries", ticket_id), entry.model_dump_json()
            )

    def update(self, ticket_id: str, change: Change) -> Ticket | None:
        key = self.redis.key("ticket", ticket_id)

        def step(pipe: redis.client.Pipeline, current: Ticket | None) -> bool:
            new = change(current) if current is not None else None
            if current is None or new is None:
                return False
            new = Ticket.model_validate(new.model_dump() | {"id": current.id, "transcript": ()})
            pipe.multi()
            pipe.set(key, fields_json(new))
            if new.status != current.status:
                pipe.zrem(self.redis.key("tickets", current.status), ticket_id)
                pipe.zadd(self.redis.key("tickets", new.status), {ticket_id: new.created_at})
            self._index(pipe, current, new)
            pipe.execute()
            return True

        return self.get(ticket_id) if self._watched(key, step) else None

    def active_for(self, conversation_id: str) -> Ticket | None:
        with self.redis.guard():
            key = self.redis.key("ticket-by-conversation", conversation_id)
            ticket_id = self.redis.client.get(key)
        if ticket_id is None:
            return None
        ticket = self.get(text(ticket_id))
        return ticket if ticket is not None and ticket.active else None

    def by_agent_thread(self, agent_thread: str) -> Ticket | None:
        with self.redis.guard():
            ticket_id = self.redis.client.get(self.redis.key("ticket-by-thread", agent_thread))
        return None if ticket_id is None else self.get(text(ticket_id))

    def list(
        self, statuses: tuple[TicketStatus, ...] = ACTIVE, limit: int = 100, offset: int = 0
    ) -> list[Ticket]:
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=False)
            for status in statuses:
                key = self.redis.key("tickets", status)
                pipe.zrange(key, 0, offset + limit - 1, withscores=True)
            found = [pair for chunk in pipe.execute() for pair in chunk]
        found.sort(key=lambda pair: pair[1])
        tickets = (self.get(text(raw)) for raw, _ in found[offset : offset + limit])
        return [ticket for ticket in tickets if ticket is not None]

    def counts(self) -> dict[TicketStatus, int]:
        statuses: tuple[TicketStatus, ...] = (*ACTIVE, *CLOSED)
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=False)
            for status in statuses:
                pipe.zcard(self.redis.key("tickets", status))
            sizes = pipe.execute()
        return {status: int(n) for status, n in zip(statuses, sizes, strict=True)}

    def facts(self, since: float) -> builtins.list[TicketFacts]:
        """From the facts hash kept beside the tickets: one read of a few bytes a ticket.
        Tickets stored before the hash existed are read whole once and added to it."""
        statuses = (*ACTIVE, *CLOSED)
        facts_key = self.redis.key("ticket-facts", "all")
        with self.redis.guard():
            pipe = self.redis.client.pipeline(transaction=False)
            pipe.hvals(facts_key)
            for status in statuses:
                pipe.zcard(self.redis.key("tickets", status))
            kept, *sizes = pipe.execute()
        if len(kept) < sum(sizes):
            self._fill_facts()
            with self.redis.guard():
                kept = self.redis.client.hvals(facts_key)
        facts = []
        for raw in texts(kept):
            created, now_status, rating, reason = raw.split("|", 3)
            if float(created) >= since:
                facts.append(TicketFacts(float(created), now_status, reason,
                                         int(rating) if rating else None))
        return facts

    def _fill_facts(self) -> None:
        facts_key = self.redis.key("ticket-facts", "all")
        for status in (*ACTIVE, *CLOSED):
            with self.redis.guard():
                ids = texts(self.redis.client.zrange(self.redis.key("tickets", status), 0, -1))
                known = set(texts(self.redis.client.hkeys(facts_key)))
            for ticket_id in ids:
                ticket = None if ticket_id in known else self.get(ticket_id)
                if ticket is not None:
                    with self.redis.guard():
                        self.redis.client.hset(facts_key, ticket_id, _facts_line(ticket))

    def of_customer(self, customer: str) -> builtins.list[Ticket]:
        with self.redis.guard():
            ids = texts(self.redis.client.zrange(self.customer_key(customer), 0, -1))
        tickets = (self.get(ticket_id) for ticket_id in ids)
        return [ticket for ticket in tickets if ticket is not None]

    def anonymise(self, ticket_id: str) -> None:
        self._erase(ticket_id)

    def purge(self, closed_before: float) -> int:
        """Candidates come from the status indexes, scored by creation: a ticket closed before
        `closed_before` was created before it too."""
        purged = 0
        for status in CLOSED:
            index, start = self.redis.key("tickets", status), 0
            while True:
                with self.redis.guard():
                    batch = texts(
                        self.redis.client.zrangebyscore(
                            index, "-inf", f"({closed_before}", start=start, num=PURGE_BATCH
                        )
                    )
                if not batch:
                    break
                deleted = sum(self._erase(ticket_id, closed_before) for ticket_id in batch)
                purged += deleted
                start += len(batch) - deleted  # those kept stay ahead of the next batch
        return purged

    def customer_key(self, customer: str) -> str:
        """The sorted set of a platform user's ticket ids, by creation time."""
        return self.redis.key("ticket-by-customer", customer)

    def _erase(self, ticket_id: str, closed_before: float | None = None) -> bool:
        """Take the person out of a ticket in one transaction: its entries, its place in the
        customer's index, and the conversation and thread links that still lead to it. Without
        `closed_before` the anonymised fields stay; with it, the whole ticket goes if it closed
        before then, else nothing changes. Whether it changed anything."""
        key = self.redis.key("ticket", ticket_id)

        def step(pipe: redis.client.Pipeline, ticket: Ticket | None) -> bool:
            if ticket is None:
                return False
            if closed_before is not None and not _closed_before(ticket, closed_before):
                return False
            links = [self.redis.key("ticket-by-conversation", ticket.conversation_id)]
            if ticket.agent_thread:
                links.append(self.redis.key("ticket-by-thread", ticket.agent_thread))
            pipe.watch(*links)  # a link taken over meanwhile is left to its new ticket
            pointers = pipe.mget(links)
            pipe.multi()
            if closed_before is None:
                pipe.set(key, fields_json(anonymised(ticket)))
            else:
                pipe.delete(key)
                pipe.zrem(self.redis.key("tickets", ticket.status), ticket_id)
                pipe.hdel(self.redis.key("ticket-facts", "all"), ticket_id)
            pipe.delete(self.redis.key("ticket-entries", ticket_id))
            pipe.zrem(self.customer_key(ticket.customer), ticket_id)
            for link, pointer in zip(links, pointers, strict=True):
                if pointer is not None and text(pointer) == ticket_id:
                    pipe.delete(link)
            pipe.execute()
            return True

        return self._watched(key, step)

    def _watched(
        self, key: str, step: Callable[[redis.client.Pipeline, Ticket | None], bool]
    ) -> bool:
        """`step` on the ticket at `key`, watched: it opens the transaction (`pipe.multi()`)
        and runs it; run again from the start when someone else changed the ticket first."""
        with self.redis.guard(), self.redis.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    return step(pipe, Ticket.model_validate_json(raw) if raw is not None else None)
                except redis.WatchError:
                    continue  # someone else changed it first: recompute from their version

    def _index(self, pipe: redis.client.Pipeline, old: Ticket | None, new: Ticket) -> None:
        pipe.hset(self.redis.key("ticket-facts", "all"), new.id, _facts_line(new))
        if old is None or old.customer != new.customer:
            if old is not None:
                pipe.zrem(self.customer_key(old.customer), new.id)
            pipe.zadd(self.customer_key(new.customer), {new.id: new.created_at})
        by_conversation = self.redis.key("ticket-by-conversation", new.conversation_id)
        if new.active:
            pipe.set(by_conversation, new.id)
        elif old is not None and old.active:
            pipe.delete(by_conversation)
        if new.agent_thread and (old is None or old.agent_thread != new.agent_thread):
            pipe.set(self.redis.key("ticket-by-thread", new.agent_thread), new.id)


def _facts_line(ticket: Ticket) -> str:
    """created|status|rating|reason: split faster than JSON parses, for 10,000s at a time."""
    return f"{ticket.created_at!r}|{ticket.status}|{ticket.rating or ''}|{ticket.reason}"


def _closed_before(ticket: Ticket, moment: float) -> bool:
    return ticket.status in CLOSED and ticket.closed_at is not None and ticket.closed_at < moment
