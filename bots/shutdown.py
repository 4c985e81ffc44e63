"""Graceful shutdown for adapters that run turns on their main thread (the terminal chat), and
`on_sigterm` for those on an event loop (Telegram, Slack: `bots.intake.Intake.drain`).

On SIGTERM the process stops taking new messages; a turn in flight may finish within the
grace period (its reply is sent and its state saved), then the process exits. A turn that
overruns the grace period is abandoned with `TurnAbandoned`, which unwinds through the store's
lock and transaction, so the conversation keeps the state it had before that turn.

    with Shutdown(grace_s=20) as shutdown:
        for line in shutdown.take(lines):   # SIGTERM while waiting: the loop ends
            with shutdown.turn():           # SIGTERM now: the turn finishes, then the loop ends
                conversation.handle(...)
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

from core.infra.logs import event

log = logging.getLogger(__name__)


class ShutdownRequested(BaseException):
    """Raised into the main thread when SIGTERM arrives while it waits for input."""


class TurnAbandoned(BaseException):
    """Raised into a turn that did not finish within the grace period after SIGTERM.

    A BaseException, so the core's per-turn `except Exception` does not swallow it.
    """


class Shutdown:
    def __init__(self, grace_s: float, on_request: Callable[[], None] | None = None) -> None:
        self.grace_s = grace_s
        self.on_request = on_request  # e.g. HealthServer.drain
        self.requested = False
        self.abandoned = False
        self._waiting = False
        self._in_turn = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Shutdown:
        for signum in (signal.SIGTERM, signal.SIGALRM):
            self._previous[signum] = signal.getsignal(signum)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        return kind is ShutdownRequested

    def take(self, items: Iterable[str]) -> Iterator[str]:
        """Items until the input ends or shutdown is requested; never one after SIGTERM."""
        source = iter(items)
        while not self.requested:
            self._waiting = True
            try:
                item = next(source, None)
            finally:
                self._waiting = False
            if item is None or self.requested:
                return
            yield item

    @contextmanager
    def turn(self) -> Iterator[None]:
        self._in_turn = True
        try:
            yield
        finally:
            self._in_turn = False
            if self.requested:
                signal.setitimer(signal.ITIMER_REAL, 0)
                event(log, "shutdown.turn_finished")

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            return
        self.requested = True
        event(log, "shutdown.requested", in_turn=self._in_turn, grace_s=self.grace_s)
        if self.on_request is not None:
            self.on_request()
        if self._in_turn:
            signal.setitimer(signal.ITIMER_REAL, self.grace_s)
        elif self._waiting:
            raise ShutdownRequested

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._in_turn:
            self.abandoned = True
            event(log, "shutdown.turn_abandoned", logging.ERROR, grace_s=self.grace_s)
            raise TurnAbandoned(f"the turn did not finish within {self.grace_s} s of SIGTERM")


def on_sigterm(stop: Callable[[], Awaitable[None]]) -> None:
    """Run `stop()` on the running event loop when SIGTERM arrives (once; repeats are logged)."""
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    async def run() -> None:
        await stop()

    def requested() -> None:
        event(log, "shutdown.requested", repeated=bool(stopping))
        if not stopping:
            stopping.append(loop.create_task(run()))

    loop.add_signal_handler(signal.SIGTERM, requested)
