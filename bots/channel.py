"""What every chat adapter shares: run one turn off the event loop, keep each conversation's
turns in order, keep only the replies this platform delivers, name each member's conversation
in a group chat, and hand agents' replies (taken from the store on a background thread) back to
the adapter's event loop.

An adapter parses a platform event into an `Incoming`, calls `run_turn`, and renders the replies
`own_replies` gives it; nothing else about a turn is its business.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from core.handover.deliveries.store import MaybeDelivered
from core.infra.logs import event
from core.state.store import LockTimeout
from core.turn import replies
from core.turn.messages import CollectingOutbox, Incoming, Outbox, Reply

log = logging.getLogger(__name__)

Handler = Callable[[Incoming, Outbox], None]
AsyncSend = Callable[[str, Reply], Coroutine[Any, Any, None]]

# A busy conversation (another turn holds it): pauses between tries, and when to give up.
BUSY_FIRST_PAUSE_S = 0.5
BUSY_MAX_PAUSE_S = 10.0
BUSY_GIVE_UP_S = 300.0
# An agent's reply not sent within this is stopped: well below the delivery lease (30 s by
# default), though the delivery loop also renews the lease while a send runs.
SEND_TIMEOUT_S = 20.0
STOP_WAIT_S = 5.0  # how long a stopped send may take to tell whether it had begun
MEMBER_MARK = "@"  # `<place>@<member>`: one member's conversation in a group chat
# Turns run in threads of their own, not asyncio's default pool (cores + 4 threads, shared with
# every ledger and inbox call): a turn mostly waits (a model batch, Redis, a Celery job), and the
# understanding model encodes the messages of concurrent turns in one batch.
TURN_THREADS = 32
_turn_pool: concurrent.futures.ThreadPoolExecutor | None = None


def member_conversation(place: str, member: str | None) -> str:
    """The conversation id of `member` in the group chat (or thread, or topic) `place`, or of
    the place itself when there is no member to tell apart (a private chat, a DM).

    In a group each member has a conversation of their own: their own state, suggestions and
    order details, and nobody else's message interleaves with their turns."""
    return place if member is None else f"{place}{MEMBER_MARK}{member}"


def split_member(conversation: str) -> tuple[str, str | None]:
    """(place, member) of a conversation id; member is None outside group chats."""
    place, mark, member = conversation.partition(MEMBER_MARK)
    if mark and not member:
        raise ValueError(f"no member after {MEMBER_MARK!r}: {conversation!r}")
    return place, member or None


async def run_turn(
    handler: Handler, incoming: Incoming, give_up_after_s: float = BUSY_GIVE_UP_S
) -> tuple[Reply, ...]:
    """The replies of one turn, computed in a worker thread (the core is synchronous and may be
    slow: a model, a Celery job, a lock). A failed turn still answers the customer honestly.

    A conversation busy in another turn (the core's LockTimeout: nothing ran) is tried again
    with growing pauses, for `give_up_after_s`; then the customer is told the message was not
    handled. Cancelled meanwhile (shutting down), the message stays in the adapter's inbox."""
    outbox = CollectingOutbox()
    started = time.perf_counter()
    failed = False
    pause = BUSY_FIRST_PAUSE_S
    while True:
        try:
            await asyncio.get_running_loop().run_in_executor(
                _turn_threads(), handler, incoming, outbox
            )
        except LockTimeout:
            waited = time.perf_counter() - started
            if waited + pause > give_up_after_s:
                event(log, "adapter.busy_gave_up", level=logging.ERROR,
                      conversation_id=incoming.conversation_id, waited_s=round(waited, 1))
                outbox.send(Reply(replies.NOT_HANDLED, conversation_id=incoming.conversation_id,
                                  thread_id=incoming.thread_id))
                break
            event(log, "adapter.busy", level=logging.WARNING,
                  conversation_id=incoming.conversation_id, retry_in_s=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, BUSY_MAX_PAUSE_S)
            continue
        except Exception:  # the core failed: log the cause, tell the customer, keep serving others
            failed = True
            log.exception("adapter.turn_failed")
            outbox.send(
                Reply(text=replies.INTERNAL_ERROR, conversation_id=incoming.conversation_id)
            )
        break
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


def _turn_threads() -> concurrent.futures.ThreadPoolExecutor:
    global _turn_pool
    if _turn_pool is None:
        _turn_pool = concurrent.futures.ThreadPoolExecutor(TURN_THREADS, thread_name_prefix="turn")
    return _turn_pool


def own_replies(
    platform: str, incoming: Incoming, turn_replies: Sequence[Reply]
) -> Iterator[tuple[str, Reply]]:
    """(conversation id, reply) for each reply this platform's adapter sends. A reply addressed
    to another platform's conversation is left to that platform's process (and logged)."""
    for reply in turn_replies:
        target = reply.conversation_id or incoming.conversation_id
        if not target.startswith(f"{platform}:"):
            event(log, "adapter.foreign_reply", level=logging.WARNING, platform=platform,
                  target=target)
            continue
        yield target, reply


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


def threadsafe(
    send: AsyncSend, loop: asyncio.AbstractEventLoop, timeout_s: float = SEND_TIMEOUT_S
) -> Callable[[str, Reply], None]:
    """A blocking `send_reply` for a delivery thread: runs `send` on the adapter's `loop` and
    waits for it (`send_on_loop`)."""

    def send_reply(conversation_id: str, reply: Reply) -> None:
        send_on_loop(lambda: send(conversation_id, reply), loop, timeout_s, conversation_id)

    return send_reply


def send_on_loop(
    make: Callable[[], Coroutine[Any, Any, None]],
    loop: asyncio.AbstractEventLoop,
    timeout_s: float = SEND_TIMEOUT_S,
    target: str = "the platform",
) -> None:
    """Run the send `make()` on `loop` from a delivery thread and wait for it. An exception
    means "not delivered", and the delivery is retried later.

    A send still running after `timeout_s` is stopped. One that never began (the loop was busy)
    is stopped before it can begin, and fails like any other; one that began may already have
    reached the platform, so it raises `MaybeDelivered`: sending it again could send it twice.
    """
    progress = _SendProgress()

    async def attempt() -> None:
        if progress.abandoned:
            return
        progress.began = True
        await make()
        progress.finished = True

    future = asyncio.run_coroutine_threadsafe(attempt(), loop)
    try:
        future.result(timeout_s)
        return
    except concurrent.futures.TimeoutError:
        pass
    # Decided on the loop's own thread, so the attempt cannot begin after the decision.
    decided: concurrent.futures.Future[tuple[bool, bool]] = concurrent.futures.Future()
    loop.call_soon_threadsafe(lambda: decided.set_result(progress.abandon()))
    try:
        began, finished = decided.result(STOP_WAIT_S)
    except concurrent.futures.TimeoutError:
        began, finished = True, False  # the loop is stuck: whether it began is unknown
    if finished:
        return
    future.cancel()
    if began:
        raise MaybeDelivered(f"the send to {target} took over {timeout_s:g} s")
    raise TimeoutError(f"the send to {target} did not begin within {timeout_s:g} s")


class _SendProgress:
    """How far one send got, read and changed only on the adapter's event loop."""

    def __init__(self) -> None:
        self.began = False
        self.finished = False
        self.abandoned = False

    def abandon(self) -> tuple[bool, bool]:
        """Stop a send that has not begun; (began, finished) as they stood."""
        self.abandoned = True
        return self.began, self.finished
