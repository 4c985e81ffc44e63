"""Values built from the store database and rebuilt when the shop changes it.

A process holds the catalog and the help articles in memory (search and filters over them are
in-memory work), but the shop may change a price, a stock level or an article at any time. The
database keeps a version counter per kind that its triggers raise on every change; `Live` reads
that counter at most every `check_s` seconds and rebuilds its value only when it moved, so a
change is served within seconds by every process, and a turn never reloads anything.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from core.infra.logs import event
from core.shop.catalog import JsonlCatalog, Product
from core.shop.knowledge import Answer, Bm25KnowledgeBase

T = TypeVar("T")
log = logging.getLogger(__name__)


class Live(Generic[T]):
    """`build()` once, then again whenever `version()` returns a different number."""

    def __init__(
        self,
        name: str,
        version: Callable[[], int],
        build: Callable[[], T],
        check_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._version = version
        self._build = build
        self._check_s = check_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._seen = -1
        self._next_check = 0.0

    def current(self) -> T:
        """The value for the newest version seen; the first call builds it."""
        value = self._value
        if value is not None and self._clock() < self._next_check:
            return value
        with self._lock:
            if self._value is None or self._clock() >= self._next_check:
                self._refresh()
            assert self._value is not None
            return self._value

    def _refresh(self) -> None:
        try:
            # Read the counter before building: a change made during the build moves it
            # again, and the next check rebuilds.
            seen = self._version()
            if seen != self._seen or self._value is None:
                started = time.perf_counter()
                self._value = self._build()
                self._seen = seen
                event(log, "store.reloaded", what=self.name, version=seen,
                      ms=round((time.perf_counter() - started) * 1000, 1))
        except Exception as error:  # the database is down: keep serving what we have
            if self._value is None:
                raise
            event(log, "store.reload_failed", level=logging.WARNING, what=self.name,
                  error=type(error).__name__)
        self._next_check = self._clock() + self._check_s


class LiveCatalog:
    """A `Catalog` over the newest snapshot of the store's products."""

    def __init__(self, snapshots: Live[JsonlCatalog]) -> None:
        self._snapshots = snapshots

    def snapshot(self) -> JsonlCatalog:
        """The products as of now; a new object whenever the catalog changed."""
        return self._snapshots.current()

    def get(self, item_id: str) -> Product | None:
        return self.snapshot().get(item_id)

    def all(self) -> Sequence[Product]:
        return self.snapshot().all()

    def categories(self) -> tuple[str, ...]:
        return self.snapshot().categories()

    def attributes(self) -> tuple[str, ...]:
        return self.snapshot().attributes()

    def colors(self) -> tuple[str, ...]:
        return self.snapshot().colors()

    def find_by_title(self, text: str) -> Product | None:
        return self.snapshot().find_by_title(text)


class LiveKnowledge:
    """A `KnowledgeBase` over the newest version of the store's articles."""

    def __init__(self, indexes: Live[Bm25KnowledgeBase]) -> None:
        self._indexes = indexes

    def answer(self, question: str, topic: str | None = None) -> Answer | None:
        return self._indexes.current().answer(question, topic)
