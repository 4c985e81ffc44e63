"""Micro-batching: concurrent calls from many threads share one batched computation.

Why: most of a turn's CPU is one MiniLM forward over one short message, and the same forward
over a few dozen messages costs little more than over one (the matrices just get taller).
Turns of different conversations already run in threads (`bots.channel.run_turn`), each
asking for its own message; here they hand their item to one batching thread and wait. That
thread takes everything queued, runs one computation for all of it, and gives each caller its
own result, or its own error.

A lone call pays no wait: the thread, idle, finds one item and runs it at once. Companions are
waited for (at most `max_wait_s`) only while calls are arriving together, which calls queued
during the last computation show; a computation in progress gathers the next batch anyway.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.infra.logs import event

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(frozen=True)
class BatchingStats:
    batches: int  # computations run
    items: int  # calls answered by them
    largest: int  # most items in one computation

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0


class BatcherClosed(RuntimeError):
    """A call after `close()`: nothing runs it any more."""


@dataclass
class _Call(Generic[In, Out]):
    item: In
    result: Future[Out]


_STOP = object()  # put on the queue by close(): the thread finishes what is queued, then ends


class MicroBatcher(Generic[In, Out]):
    """`submit(item)` from any thread returns `compute([item, ...])`'s answer for that item.

    `compute` takes a list of items and returns one result per item, in order; it runs on one
    thread only, never concurrently with itself. If it raises for a batch of several, each item
    is computed again alone, so an error reaches only the caller whose item caused it.
    """

    def __init__(
        self,
        compute: Callable[[Sequence[In]], Sequence[Out]],
        max_batch: int = 32,
        max_wait_s: float = 0.002,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._compute = compute
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.name = name
        self._queue: queue.SimpleQueue[_Call[In, Out] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()
        self._closed = False
        self._batches = self._items = self._largest = 0

    def submit(self, item: In) -> Out:
        """The result for `item`, computed in a batch with whatever else is asked meanwhile;
        the computation's exception when it failed for this item."""
        call: _Call[In, Out] = _Call(item, Future())
        with self._starting:
            if self._closed:
                raise BatcherClosed(f"{self.name} is closed")
            if self._thread is None:
                # Started on first use, not at construction: a process that forks after
                # building its services (Celery's prefork) gets no thread it cannot use.
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put(call)
        return call.result.result()

    def close(self, timeout_s: float = 10.0) -> None:
        """Answer every call already queued, then stop the thread; later calls raise
        `BatcherClosed`. Idempotent."""
        with self._starting:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout_s)

    def stats(self) -> BatchingStats:
        return BatchingStats(self._batches, self._items, self._largest)

    def _run(self) -> None:
        while True:
            try:
                # Calls queued while the last batch ran: they are arriving together, so the
                # next batch may wait a moment for more of them.
                first, arriving = self._queue.get_nowait(), True
            except queue.Empty:
                # Idle until a call comes; if it comes alone, it runs at once.
                first, arriving = self._queue.get(), False
            if first is _STOP:
                return
            batch, stop = self._gather(first, wait_s=self.max_wait_s if arriving else 0.0)
            self._answer(batch)
            if stop:
                return

    def _gather(self, first: object, wait_s: float) -> tuple[list[_Call[In, Out]], bool]:
        """`first` and what else is queued, up to `max_batch`, waiting up to `wait_s` for it;
        and whether close() was asked meanwhile (then the batch is the last one)."""
        batch = [first]
        deadline = time.monotonic() + wait_s
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                call = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if call is _STOP:
                return batch, True  # type: ignore[return-value]
            batch.append(call)
        return batch, False  # type: ignore[return-value]

    def _answer(self, batch: list[_Call[In, Out]]) -> None:
        self._batches += 1
        self._items += len(batch)
        self._largest = max(self._largest, len(batch))
        try:
            results = list(self._compute([call.item for call in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"{self.name}: {len(results)} results for {len(batch)} items")
        except BaseException as exc:  # handed to the callers, who raise it; the thread goes on
            if len(batch) == 1:
                batch[0].result.set_exception(exc)
                return
            event(log, "batcher.batch_failed", logging.WARNING, batcher=self.name,
                  size=len(batch), error=type(exc).__name__)
            for call in batch:  # alone, so only the caller whose item fails gets the error
                self._answer([call])
            return
        for call, result in zip(batch, results, strict=True):
            call.result.set_result(result)
