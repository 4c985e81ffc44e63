"""How a chat adapter takes a customer's message so that nothing is lost: into the inbox before
the platform is acknowledged, answered, and settled only once the replies went out; messages a
dead process left are answered again (replay); on SIGTERM the turns in flight finish (bounded)
and the rest stay in the inbox for the next process.

    intake = Intake(inbox, "telegram", answer, order.hold, lease_s=60)
    pending = await intake.accept(key, incoming)   # None: a repeat delivery, say nothing
    await intake.run(pending)                      # or intake.spawn(pending), in line
    intake.start_replay()                          # on the adapter's event loop
    await intake.drain(grace_s)                    # on SIGTERM

`answer(pending)` is the adapter's: run the turn (`bots.channel.run_turn`) and send its replies;
raising means "not sent", and the message is tried again after its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from bots.ledger.inbox import Inbox, Pending
from core.infra.errors import StoreUnavailable
from core.infra.logs import event
from core.turn.messages import Incoming

log = logging.getLogger(__name__)

Answer = Callable[[Pending], Awaitable[None]]
Hold = Callable[[str], AbstractAsyncContextManager[None]]

MAX_ATTEMPTS = 5  # a message no process could answer this many times is given up (logged)
REPLAY_BATCH = 20


class Intake:
    def __init__(
        self, inbox: Inbox, platform: str, answer: Answer, hold: Hold, lease_s: float = 60.0
    ) -> None:
        self.inbox = inbox
        self.platform = platform
        self.answer = answer
        self.hold = hold  # the adapter's ConversationOrder.hold: one turn at a time, in order
        self.lease_s = lease_s
        self.draining = False
        self._turns: dict[asyncio.Task[None], Pending] = {}
        self._spawned: set[asyncio.Task[None]] = set()
        self._replay: asyncio.Task[None] | None = None

    async def accept(
        self, key: str, incoming: Incoming, anchor: str | None = None
    ) -> Pending | None:
        """Keep the message under its delivery key; None when the key was taken before (a
        repeated delivery). The inbox unreachable: answered anyway, without the safety net."""
        pending = Pending.of(key, incoming, anchor)
        try:
            fresh = await asyncio.to_thread(self.inbox.accept, pending, self.lease_s)
        except StoreUnavailable as error:
            event(log, "inbox.unavailable", level=logging.ERROR, operation="accept",
                  error=str(error))
            return pending
        if not fresh:
            event(log, "inbox.duplicate", platform=self.platform,
                  conversation_id=incoming.conversation_id)
            return None
        return pending

    async def run(self, pending: Pending) -> None:
        """Answer `pending` (the caller holds its conversation's place in line), settle it once
        its replies are out; leave it to the replay when they could not be sent."""
        task = asyncio.current_task()
        assert task is not None
        self._turns[task] = pending
        renewing = asyncio.create_task(self._keep_leased(pending.ref))
        try:
            await self.answer(pending)
        except asyncio.CancelledError:  # shutting down: the next process answers it
            await self._call("release", self.inbox.release, pending.ref)
            raise
        except Exception as error:
            event(log, "inbox.unsent", level=logging.ERROR, platform=self.platform,
                  attempts=pending.attempts, error=repr(error))
            return
        finally:
            renewing.cancel()
            self._turns.pop(task, None)
        await self._call("settle", self.inbox.settle, pending.ref)

    def spawn(self, pending: Pending) -> None:
        """Answer `pending` in the background, in its conversation's line."""
        task = asyncio.create_task(self._in_line(pending))
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    async def _in_line(self, pending: Pending) -> None:
        async with self.hold(pending.incoming.conversation_id):
            await self.run(pending)

    async def _keep_leased(self, ref: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self._call("renew", self.inbox.renew, ref, self.lease_s)

    # -- replay -------------------------------------------------------------------------------

    def start_replay(self) -> None:
        """Answer, now and every half lease, the messages a dead process left (on the adapter's
        event loop)."""
        self._replay = asyncio.create_task(self._replay_forever())

    async def replay_once(self) -> int:
        """Take the stale messages of this platform and answer each in the background."""
        try:
            taken = await asyncio.to_thread(
                self.inbox.take_stale, self.platform, self.lease_s, REPLAY_BATCH
            )
        except StoreUnavailable as error:
            event(log, "inbox.unavailable", level=logging.ERROR, operation="take",
                  error=str(error))
            return 0
        for pending in taken:
            if pending.attempts > MAX_ATTEMPTS:
                event(log, "inbox.given_up", level=logging.ERROR, platform=self.platform,
                      conversation_id=pending.incoming.conversation_id)
                await self._call("settle", self.inbox.settle, pending.ref)
                continue
            event(log, "inbox.replay", platform=self.platform, attempts=pending.attempts,
                  conversation_id=pending.incoming.conversation_id)
            self.spawn(pending)
        return len(taken)

    async def _replay_forever(self) -> None:
        while not self.draining:
            await self.replay_once()
            await asyncio.sleep(self.lease_s / 2)

    # -- shutdown -----------------------------------------------------------------------------

    async def drain(self, grace_s: float) -> None:
        """Stop replaying, let the turns in flight finish within `grace_s`; cancel the rest
        (their messages go back to the inbox for the next process)."""
        self.draining = True
        if self._replay is not None:
            self._replay.cancel()
        flight = set(self._turns) | self._spawned
        event(log, "shutdown.draining", platform=self.platform, turns=len(flight), grace_s=grace_s)
        if flight:
            _done, late = await asyncio.wait(flight, timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                event(log, "shutdown.turns_left", level=logging.WARNING, turns=len(late))
                await asyncio.wait(late, timeout=5)
        event(log, "shutdown.drained", platform=self.platform)

    async def _call(self, operation: str, call: Callable[..., None], *args: object) -> None:
        """An inbox write that may fail without failing the turn (the message is only answered
        again later, or kept a little longer)."""
        with contextlib.suppress(asyncio.CancelledError):
            try:
                await asyncio.to_thread(call, *args)
            except StoreUnavailable as error:
                event(log, "inbox.unavailable", level=logging.ERROR, operation=operation,
                      error=str(error))
