"""One customer turn, run for an async chat adapter without blocking its event loop.

The core's `handle` is synchronous and may be slow (a model, a Celery job, a lock), so it runs
in a worker thread with an outbox that collects the replies; the adapter renders them after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from core.logs import event
from core.messages import CollectingOutbox, Incoming, Outbox, Reply

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
