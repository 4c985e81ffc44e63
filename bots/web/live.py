"""Live pages: what changed in the tickets, pushed to open pages as server-sent events.

One watcher per desk process looks at the tickets every `poll_s` while any page listens, so
a hundred open pages cost one look, not a hundred. It works on every ticket backend (SQLite or
Redis) and sees changes made by any process: a customer's message relayed by a bot, another
agent's claim on another desk process, the console. A page that hears "changed" fetches its
own live part again (`desk.js`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Hashable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool

from core.handover.tickets.store import ACTIVE, Ticket, TicketStore
from core.infra.errors import StoreUnavailable
from core.infra.logs import event

log = logging.getLogger(__name__)

INBOX = "inbox"  # what an inbox page listens to; a ticket page listens to its ticket's id


def _mark(ticket: Ticket | None) -> Hashable:
    if ticket is None:
        return None
    return (ticket.status, ticket.agent, ticket.updated_at, len(ticket.transcript), ticket.rating)


@dataclass
class LiveTickets:
    tickets: TicketStore
    poll_s: float = 0.3
    inbox_size: int = 50
    _listeners: dict[str, set[asyncio.Queue[str]]] = field(default_factory=dict)
    _marks: dict[str, Hashable] = field(default_factory=dict)

    def listen(self, topic: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=16)
        self._listeners.setdefault(topic, set()).add(queue)
        return queue

    def leave(self, topic: str, queue: asyncio.Queue[str]) -> None:
        listeners = self._listeners.get(topic, set())
        listeners.discard(queue)
        if not listeners:
            self._listeners.pop(topic, None)
            self._marks.pop(topic, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            topics = [topic for topic, queues in self._listeners.items() if queues]
            if not topics:
                continue
            try:
                marks = await run_in_threadpool(self._look, topics)
            except StoreUnavailable as error:
                event(log, "web.live_unavailable", logging.WARNING, error=str(error))
                await asyncio.sleep(2.0)
                continue
            for topic, mark in marks.items():
                before = self._marks.get(topic, mark)
                self._marks[topic] = mark
                if mark != before:
                    self._tell(topic)

    def _look(self, topics: list[str]) -> dict[str, Hashable]:
        marks: dict[str, Hashable] = {}
        for topic in topics:
            if topic == INBOX:
                first_page = self.tickets.list(ACTIVE, self.inbox_size)
                counts = tuple(sorted(self.tickets.counts().items()))
                marks[topic] = (counts, tuple((t.id, _mark(t)) for t in first_page))
            else:
                marks[topic] = _mark(self.tickets.get(topic))
        return marks

    def _tell(self, topic: str) -> None:
        for queue in list(self._listeners.get(topic, ())):
            if queue.full():  # a page that stopped reading: one pending "changed" is enough
                continue
            queue.put_nowait("changed")
