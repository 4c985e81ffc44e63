"""What the assistant did, turn by turn, for the shop's dashboard: counts, never words.

A `TurnActivity` holds the kind of a turn (platform, intent, sentiment, decision), how many
suggestions it showed and which suggestion button it answered; no text, no customer or
conversation id. A conversation is counted once a day by its first turn of that day
(`first_today`), so the dashboard counts conversations without keeping who had them.

A turn must not wait for a statistics write: `BufferedActivityLog` keeps the records in memory
and a background thread writes them in batches. A crash loses at most the last `flush_s` of
counts; a store that cannot be written keeps them (up to `max_buffer`) until it can.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from core.infra.logs import event

log = logging.getLogger(__name__)


class TurnActivity(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: float  # unix seconds
    platform: str
    intent: str
    sentiment: str
    decision: str
    first_today: bool  # the conversation's first turn of this UTC day
    shown: int = 0  # suggestions shown by this turn (positions 1..shown)
    pressed: int | None = None  # the position of the suggestion whose button this turn answered
    feedback: str | None = None  # that button: more_like_this, not_for_me, details

    @property
    def day(self) -> str:
        return day_of(self.at)


def day_of(at: float) -> str:
    """The UTC day of a unix time, as the dashboard groups by it: 2026-12-03."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


class ActivityLog(Protocol):
    def record(self, activity: TurnActivity) -> None:
        """Keep one turn's record; never raises, never blocks on storage."""
        ...


Write = Callable[[Sequence[TurnActivity]], None]


class BufferedActivityLog:
    """Records kept in memory and written by a background thread, every `flush_s` or as soon
    as `batch` are waiting. `close()` writes what is left (processes call it on shutdown)."""

    def __init__(
        self, write: Write, flush_s: float = 1.0, batch: int = 500, max_buffer: int = 50_000
    ) -> None:
        self._write = write
        self._flush_s = flush_s
        self._batch = batch
        self._max_buffer = max_buffer
        self._pending: list[TurnActivity] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # records given up because the store stayed unwritable too long
        self.failure = ""  # why the last write failed

    def record(self, activity: TurnActivity) -> None:
        with self._lock:
            self._pending.append(activity)
            overflow = len(self._pending) - self._max_buffer
            if overflow > 0:
                del self._pending[:overflow]
                self.dropped += overflow
            full = len(self._pending) >= self._batch
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="activity-writer", daemon=True
                )
                self._thread.start()
        if full:
            self._wake.set()

    def flush(self) -> bool:
        """Write what is waiting now; False (and the records kept) when the store refused."""
        with self._lock:
            taken, self._pending = self._pending, []
        if not taken:
            return True
        try:
            self._write(taken)
        except Exception as error:  # any storage error: keep the counts, try again later
            with self._lock:
                self._pending[:0] = taken
            self.failure = f"{len(taken)} records not written ({type(error).__name__})"
            event(log, "activity.not_written", logging.WARNING, records=len(taken),
                  error=type(error).__name__)
            return False
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self.flush()

    def close_at_exit(self) -> None:
        """`close` as the interpreter exits: log handlers may be gone by then, so a failure
        is said once on stderr instead."""
        logging.getLogger(__name__).disabled = True
        self.close()
        if self._pending:
            print(f"concierge: activity at exit: {self.failure}", file=sys.stderr)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._flush_s)
            self._wake.clear()
            started = time.monotonic()
            if not self.flush():
                self._stop.wait(max(0.0, self._flush_s * 5 - (time.monotonic() - started)))
