"""The conversation locks a store holds: kept alive while held, and known to the holder's saves.

A lock is a lease (a Redis key or a SQLite row with an expiry), so a crashed holder frees it.
A live holder must not lose it to the clock: while a turn holds the lock, a thread renews the
lease every third of its length and stops when the turn lets go, so a slow LLM turn keeps its
conversation. A holder can still stall past its lease (a paused process, a store that did not
answer); another writer may then take the lock. So each thread's held token is remembered here,
and the store's `save` on that thread writes only if the token still owns the lock, checked in
the same atomic step as the write; otherwise `LockLost` and nothing is written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from core.infra.errors import StoreUnavailable
from core.infra.logs import event

log = logging.getLogger(__name__)

# How long a crashed holder keeps its conversation locked. Live holders renew, so this need not
# outlast the slowest turn, only a few missed renewals (a paused process, a slow store).
LOCK_LEASE_S = 15.0
RENEWALS_PER_LEASE = 3  # a holder misses two renewals in a row before its lease runs out


class HeldLocks:
    """One store's held locks: the token each thread holds, by conversation, and their renewal.

    `renew(conversation_id, token, lease_s)` extends the lease if the token still owns it and
    says whether it did. One renewal thread per store serves every held lock, so a turn that
    ends within a third of the lease (nearly all) costs a dictionary entry, not a thread."""

    def __init__(self, lease_s: float, renew: Callable[[str, str, float], bool]) -> None:
        self.lease_s = lease_s
        self._renew = renew
        self._local = threading.local()
        self._due: dict[tuple[str, str], float] = {}  # (conversation, token) -> next renewal
        self._schedule = threading.Condition()  # guards `_due`; its wait is the renewer's sleep
        self._renewer: threading.Thread | None = None

    def token(self, conversation_id: str) -> str | None:
        """The token this thread holds the conversation's lock with; None when it holds none
        (a save outside a lock: data rights, tools, tests)."""
        return self._held().get(conversation_id)

    @contextmanager
    def holding(self, conversation_id: str, token: str) -> Iterator[None]:
        """While the body runs, this thread's saves of the conversation are fenced by `token`
        and its lease is renewed."""
        held = self._held()
        held[conversation_id] = token
        with self._schedule:
            self._due[(conversation_id, token)] = time.monotonic() + self._every_s
            if self._renewer is None or not self._renewer.is_alive():  # none yet, or forked
                self._renewer = threading.Thread(
                    target=self._renew_forever, name="lock-renewal", daemon=True
                )
                self._renewer.start()
        try:
            yield
        finally:
            # Before the store releases the lock: a renewal failing after this is not a loss.
            with self._schedule:
                self._due.pop((conversation_id, token), None)  # gone if found lost
            del held[conversation_id]

    @property
    def _every_s(self) -> float:
        return self.lease_s / RENEWALS_PER_LEASE

    def _renew_forever(self) -> None:
        """Renew each held lease when due; end after a whole interval with none held (the next
        lock starts a renewer again), so idle stores keep no thread busy."""
        idle = False
        while True:
            with self._schedule:
                now = time.monotonic()
                due = [lock for lock, at in self._due.items() if at <= now]
                if not due:
                    if not self._due and idle:
                        self._renewer = None
                        return
                    idle = not self._due
                    # Never woken (a wake per turn costs more than the rest of the lock): a
                    # lock taken meanwhile is due a full interval after now, so sleeping until
                    # the soonest due, or one interval when none is held, renews it in time.
                    soonest = min(self._due.values(), default=now + self._every_s)
                    self._schedule.wait(soonest - now)
                    continue
                idle = False
                for lock in due:
                    self._due[lock] = now + self._every_s
            for conversation_id, token in due:
                self._renew_one(conversation_id, token)

    def _renew_one(self, conversation_id: str, token: str) -> None:
        try:
            kept = self._renew(conversation_id, token, self.lease_s)
        except StoreUnavailable as exc:  # tried again next time: the lease has slack left
            event(log, "store.lock_renewal_failed", logging.WARNING,
                  conversation=conversation_id, error=str(exc)[:200])
            return
        if kept:
            return
        with self._schedule:
            still_held = self._due.pop((conversation_id, token), None) is not None
        if still_held:  # expired and perhaps taken: this holder's save will be refused
            event(log, "store.lock_lost", logging.WARNING, conversation=conversation_id)

    def _held(self) -> dict[str, str]:
        held: dict[str, str] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        return held
