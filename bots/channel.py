"""One customer turn, run for an async chat adapter without blocking its event loop.

The core's `handle` is synchronous and may be slow (a model, a Celery job, a lock), so it runs
in a worker thread with an outbox that collects the replies; the adapter renders them after.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from core.infra.logs import event
from core.turn.messages import CollectingOutbox, Incoming, Outbox, Reply

log = logging.getLogger(__name__)

Handler = Callable[[Incoming, Outbox], None]

SORRY = "Sorry, something went wrong on our side. Please try again in a moment."


async def run_turn(handler: Handler, incoming: Incoming) -> tuple[Reply, ...]:
    """The replies of one turn; a failed turn still answers the customer honestly."""
    outbox = CollectingOutbox()
    started = time.perf_counter()
    failed = False
    try:
        await asyncio.to_thread(handler, incoming, outbox)
    except Exception:  # the core failed: log the cause, tell the customer, keep serving others
        failed = True
        log.exception("adapter.turn_failed")
        outbox.send(Reply(text=SORRY, conversation_id=incoming.conversation_id))
    event(
        log,
        "adapter.turn",
        level=logging.ERROR if failed else logging.INFO,
        platform=incoming.platform,
        conversation_id=incoming.conversation_id,
        button=incoming.button is not None,
        replies=len(outbox.replies),
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return tuple(outbox.replies)


class ConversationOrder:
    """One turn at a time per conversation in this process, in arrival order.

    Updates of different conversations run concurrently, but two quick messages from the same
    customer reach the core, and get their replies rendered, in the order they arrived.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        async with lock:  # asyncio.Lock wakes waiters first come, first served
            yield
