"""The activity record's buffer: turns never wait for it, and a store outage loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from core.activity.record import BufferedActivityLog, TurnActivity, day_of


def activity(n: int = 0) -> TurnActivity:
    return TurnActivity(at=1_764_720_000.0 + n, platform="terminal", intent="greeting",
                        sentiment="neutral", decision="greet", first_today=n == 0)


class Store:
    def __init__(self) -> None:
        self.batches: list[list[TurnActivity]] = []
        self.down = False
        self.written = threading.Event()

    def write(self, records: Sequence[TurnActivity]) -> None:
        if self.down:
            raise ConnectionError("store down")
        self.batches.append(list(records))
        self.written.set()


def test_records_are_written_in_batches_by_the_background_thread() -> None:
    store = Store()
    log = BufferedActivityLog(store.write, flush_s=60.0, batch=5)
    for n in range(5):
        log.record(activity(n))
    assert store.written.wait(5.0)  # a full batch wakes the writer before flush_s
    assert [len(batch) for batch in store.batches] == [5]
    log.record(activity(5))
    log.close()  # what is left goes out on close
    assert sum(len(batch) for batch in store.batches) == 6


def test_a_store_outage_keeps_the_records_until_it_is_back() -> None:
    store = Store()
    store.down = True
    log = BufferedActivityLog(store.write, flush_s=60.0, batch=1000)
    log.record(activity(0))
    log.record(activity(1))
    assert not log.flush()
    store.down = False
    log.record(activity(2))
    assert log.flush()
    assert [r.at for r in store.batches[0]] == [activity(n).at for n in range(3)]
    log.close()


def test_the_buffer_is_bounded() -> None:
    store = Store()
    store.down = True
    log = BufferedActivityLog(store.write, flush_s=60.0, batch=1000, max_buffer=3)
    for n in range(5):
        log.record(activity(n))
    assert log.dropped == 2
    store.down = False
    log.close()
    assert [r.at for r in store.batches[0]] == [activity(n).at for n in (2, 3, 4)]


def test_days_are_utc() -> None:
    assert day_of(1_764_720_000.0) == "2025-12-03"
    assert day_of(1_764_720_000.0 - 1) == "2025-12-02"
