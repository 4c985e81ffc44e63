"""Hand-over plumbing for the async chat adapters.

While a person handles a conversation, their replies are written to the store by another
process (the agent console, or the Slack process hosting the support channel). Each bot process
runs a `Deliveries` loop on a thread that takes the replies for its platform and sends each
through the adapter's own `send_reply` coroutine on the adapter's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from core.turn.conversation import Conversation
from core.handover.deliveries.store import Deliveries, customer_topic
from core.turn.messages import Reply
from core.infra.settings import Settings

SEND_TIMEOUT_S = 60.0  # a send slower than this counts as failed; the delivery is retried

AsyncSend = Callable[[str, Reply], Coroutine[Any, Any, None]]


def threadsafe(send: AsyncSend, loop: asyncio.AbstractEventLoop) -> Callable[[str, Reply], None]:
    """A blocking `send_reply` for a delivery thread: runs `send` on `loop` and waits for it."""

    def send_reply(conversation_id: str, reply: Reply) -> None:
        future = asyncio.run_coroutine_threadsafe(send(conversation_id, reply), loop)
        future.result(SEND_TIMEOUT_S)  # an exception here means "not delivered": retried later

    return send_reply


def start_customer_deliveries(
    settings: Settings,
    conversation: Conversation,
    platform: str,
    send: AsyncSend,
    loop: asyncio.AbstractEventLoop | None = None,
) -> Deliveries | None:
    """Deliver agents' replies to this platform's customers; None when escalation is off.

    Call it from the adapter's running event loop (e.g. a startup hook), or pass the loop.
    """
    from bots.wiring import start_customer_deliveries as start

    loop = loop or asyncio.get_running_loop()
    topic = customer_topic(platform, f"{platform}:*")
    return start(settings, conversation, topic, threadsafe(send, loop))
