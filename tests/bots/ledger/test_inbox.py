"""The adapters' inbox on both backends: real Redis (DB 12) and a SQLite file, beside a ledger."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bots.ledger.factory import inbox_beside
from bots.ledger.inbox import Inbox, Pending
from bots.ledger.redis import RedisLedger
from bots.ledger.sqlite import SqliteLedger
from tests.conftest import redis_namespace, redis_traces, sqlite_traces

REDIS_URL = "redis://127.0.0.1:6379/12"
TEXT = "my card is 4111 and I want my parcel"


@pytest.fixture(params=["redis", "sqlite"])
def inbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Inbox]:
    if request.param == "sqlite":
        yield inbox_beside(SqliteLedger(tmp_path / "adapters.sqlite3", ttl_s=3600))
        return
    with redis_namespace("test-inbox", REDIS_URL) as prefix:
        yield inbox_beside(RedisLedger(REDIS_URL, prefix, ttl_s=3600))


def message(number: int, platform: str = "telegram") -> Pending:
    from core.turn.messages import Incoming

    incoming = Incoming(f"{platform}:7", f"{platform}:7", text=TEXT, message_id=f"7:{number}",
                        platform=platform, thread_id="t")
    return Pending.of(f"{platform}:message:7:{number}", incoming, anchor=str(number))


def test_a_delivery_key_is_accepted_once(inbox: Inbox):
    assert inbox.accept(message(1), lease_s=30) is True
    assert inbox.accept(message(1), lease_s=30) is False  # in progress: a platform retry
    inbox.settle(message(1).ref)
    assert inbox.accept(message(1), lease_s=30) is False  # settled: still a repeat
    assert inbox.accept(message(2), lease_s=30) is True


def test_only_stale_messages_of_the_platform_are_taken_back_whole(inbox: Inbox):
    inbox.accept(message(1), lease_s=0.5)
    inbox.accept(message(2), lease_s=30)
    inbox.accept(message(3, "slack"), lease_s=0.5)
    assert inbox.take_stale("telegram", lease_s=30) == []
    time.sleep(0.7)
    [taken] = inbox.take_stale("telegram", lease_s=30)
    assert taken == Pending(message(1).ref, message(1).incoming, "1", attempts=1)
    assert inbox.take_stale("telegram", lease_s=30) == []  # leased to the taker now
    assert [p.incoming.platform for p in inbox.take_stale("slack", lease_s=30)] == ["slack"]


def test_a_renewed_message_is_not_taken_and_a_released_one_is(inbox: Inbox):
    inbox.accept(message(1), lease_s=0.5)
    inbox.renew(message(1).ref, lease_s=30)
    time.sleep(0.7)
    assert inbox.take_stale("telegram", lease_s=30) == []
    inbox.release(message(1).ref)
    assert [p.ref for p in inbox.take_stale("telegram", lease_s=30)] == [message(1).ref]


def test_a_settled_message_is_never_taken(inbox: Inbox):
    inbox.accept(message(1), lease_s=0.1)
    inbox.settle(message(1).ref)
    time.sleep(0.2)
    assert inbox.take_stale("telegram", lease_s=30) == []


def test_two_takers_never_get_the_same_message(inbox: Inbox):
    for number in range(40):
        inbox.accept(message(number), lease_s=0.1)
    time.sleep(0.2)
    taken: list[list[Pending]] = [[], [], [], []]

    def take(index: int) -> None:
        for _ in range(5):
            taken[index].extend(inbox.take_stale("telegram", lease_s=30, limit=3))

    threads = [threading.Thread(target=take, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refs = [p.ref for batch in taken for p in batch]
    assert sorted(refs) == sorted(message(n).ref for n in range(40))


def test_a_settled_message_leaves_neither_text_nor_key(tmp_path: Path):
    path = tmp_path / "adapters.sqlite3"
    inbox = inbox_beside(SqliteLedger(path, ttl_s=3600))
    inbox.accept(message(1), lease_s=30)
    assert sqlite_traces(path, "4111")  # kept while unanswered
    inbox.settle(message(1).ref)
    assert sqlite_traces(path, "4111", "telegram:message:7:1") == []
    with redis_namespace("test-inbox", REDIS_URL) as prefix:
        ledger = RedisLedger(REDIS_URL, prefix, ttl_s=3600)
        inbox = inbox_beside(ledger)
        inbox.accept(message(1), lease_s=30)
        inbox.settle(message(1).ref)
        assert redis_traces(ledger.redis.client, prefix, "4111", "telegram:message:7:1") == []
