"""`bots.channel.threadsafe`: how an agent's reply is sent from the delivery thread on the
adapter's event loop, and what a send that takes too long reports (a real asyncio loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from bots.channel import SEND_TIMEOUT_S, threadsafe
from core.handover.deliveries.store import MaybeDelivered
from core.infra.settings import Settings
from core.turn.messages import Reply


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An adapter's event loop, running on a thread of its own."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join(5)
    running.close()


def test_a_send_that_finishes_in_time_is_delivered(loop: asyncio.AbstractEventLoop) -> None:
    sent: list[str] = []

    async def send(conversation_id: str, reply: Reply) -> None:
        sent.append(reply.text)

    threadsafe(send, loop, timeout_s=2.0)("c1", Reply("hello"))
    assert sent == ["hello"]


def test_a_send_that_began_and_ran_too_long_may_have_gone_out(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Retrying it could send it twice: it is reported as maybe delivered, not as failed."""
    finished = threading.Event()

    async def slow(conversation_id: str, reply: Reply) -> None:
        await asyncio.sleep(0.6)
        finished.set()

    with pytest.raises(MaybeDelivered):
        threadsafe(slow, loop, timeout_s=0.1)("c1", Reply("hello"))
    assert not finished.wait(1.0)  # stopped, not left running behind the caller's back


def test_a_send_that_never_began_fails_and_never_begins_later(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The loop is busy past the timeout: the send is stopped before it begins, so it is a plain
    failure (safe to retry), and it does not go out when the loop frees up."""
    began = threading.Event()

    async def send(conversation_id: str, reply: Reply) -> None:
        began.set()

    loop.call_soon_threadsafe(time.sleep, 0.5)  # a handler blocking the loop
    with pytest.raises(TimeoutError) as failure:
        threadsafe(send, loop, timeout_s=0.1)("c1", Reply("hello"))
    assert not isinstance(failure.value, MaybeDelivered)
    assert not began.wait(1.0)


def test_the_send_timeout_is_well_below_the_delivery_lease() -> None:
    assert Settings.model_fields["delivery_lease_s"].default / 1.5 >= SEND_TIMEOUT_S
