"""One suite, both ticket stores: SQLite (file) and Redis (the real server, DB 14)."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from core.handover.tickets.redis import RedisTicketStore
from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import Ticket, TicketEntry, TicketStore, new_ticket_id
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from tests.conftest import TEST_REDIS

REDIS_URL = TEST_REDIS


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> TicketStore:
    if request.param == "sqlite":
        return SqliteTicketStore(tmp_path / "state.sqlite3")
    return RedisTicketStore(REDIS_URL, redis_prefix)


def reopen(store: TicketStore) -> TicketStore:
    """A second, independent handle on the same storage (as a restarted process has)."""
    if isinstance(store, SqliteTicketStore):
        return SqliteTicketStore(store.path)
    assert isinstance(store, RedisTicketStore)
    return RedisTicketStore(store.redis.url, store.redis.prefix)


def ticket(ticket_id: str = "T1", conversation_id: str = "c1", at: float = 100.0) -> Ticket:
    return Ticket(
        id=ticket_id,
        conversation_id=conversation_id,
        customer="u1",
        platform="terminal",
        reason="customer asked for a person",
        sentiment_trend=("neutral", "negative", "negative"),
        intents=("recommend", "complaint"),
        products_shown=("P1", "P2"),
        transcript=(
            TicketEntry(role="customer", text="where is my jacket ☔", at=at - 2),
            TicketEntry(role="assistant", text="It is on its way.", at=at - 1),
        ),
        created_at=at,
        updated_at=at,
    )


def claim(agent: str) -> object:
    def change(current: Ticket) -> Ticket | None:
        if current.status != "open":
            return None
        return current.model_copy(
            update={"status": "claimed", "agent": agent, "claimed_at": time.time()}
        )

    return change


def test_round_trip_survives_restart(store: TicketStore) -> None:
    store.create(ticket())
    assert reopen(store).get("T1") == ticket()
    assert store.get("missing") is None


def test_appends_keep_order_and_survive_restart(store: TicketStore) -> None:
    store.create(ticket())
    store.append("T1", TicketEntry(role="customer", text="hello?", at=101.0))
    store.append("T1", TicketEntry(role="agent", text="Hi, Dana here.", at=102.0, author="U7"))
    again = reopen(store).get("T1")
    assert again is not None
    assert [e.text for e in again.transcript][-2:] == ["hello?", "Hi, Dana here."]
    assert again.transcript[-1].author == "U7"


def test_claim_applies_once(store: TicketStore) -> None:
    store.create(ticket())
    first = store.update("T1", claim("U7"))  # type: ignore[arg-type]
    second = reopen(store).update("T1", claim("U8"))  # type: ignore[arg-type]
    assert first is not None and first.status == "claimed" and first.agent == "U7"
    assert second is None
    stored = store.get("T1")
    assert stored is not None and stored.agent == "U7"
    assert len(stored.transcript) == 2  # an update never touches the transcript


def test_concurrent_updates_lose_nothing(store: TicketStore) -> None:
    """Read-modify-write changes from several handles at once all land."""
    store.create(ticket())

    def bump() -> None:
        handle = reopen(store)
        for _ in range(10):
            handle.update(
                "T1", lambda t: t.model_copy(update={"sentiment_trend": (*t.sentiment_trend, "x")})
            )
            handle.append("T1", TicketEntry(role="customer", text="again", at=1.0))

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = store.get("T1")
    assert stored is not None
    assert stored.sentiment_trend.count("x") == 40
    assert len(stored.transcript) == 42


def _claim_in_process(kind: str, where: str, prefix: str, agent: str, results: object) -> None:
    handle: TicketStore = (
        SqliteTicketStore(Path(where)) if kind == "sqlite" else RedisTicketStore(where, prefix)
    )
    won = handle.update("T1", claim(agent)) is not None  # type: ignore[arg-type]
    results.put((agent, won))  # type: ignore[attr-defined]


def test_only_one_process_wins_a_claim(store: TicketStore) -> None:
    store.create(ticket())
    kind = "sqlite" if isinstance(store, SqliteTicketStore) else "redis"
    where = str(store.path) if isinstance(store, SqliteTicketStore) else REDIS_URL
    prefix = store.redis.prefix if isinstance(store, RedisTicketStore) else ""
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_claim_in_process, args=(kind, where, prefix, f"U{n}", results))
        for n in range(4)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(10)
    winners = [agent for agent, won in outcomes if won]
    assert len(winners) == 1
    stored = store.get("T1")
    assert stored is not None and stored.agent == winners[0]


def test_active_ticket_of_a_conversation(store: TicketStore) -> None:
    store.create(ticket("T1", "c1", at=100.0))
    store.create(ticket("T2", "c2", at=101.0))
    found = store.active_for("c1")
    assert found is not None and found.id == "T1"
    store.update("T1", lambda t: t.model_copy(update={"status": "resolved", "closed_at": 5.0}))
    assert store.active_for("c1") is None
    assert [t.id for t in store.list()] == ["T2"]
    assert [t.id for t in store.list(("resolved",))] == ["T1"]


def test_list_is_oldest_first_and_limited(store: TicketStore) -> None:
    for n, at in enumerate((300.0, 100.0, 200.0)):
        store.create(ticket(f"T{n}", f"c{n}", at=at))
    assert [t.id for t in store.list()] == ["T1", "T2", "T0"]
    assert [t.id for t in store.list(limit=2)] == ["T1", "T2"]


def test_agent_thread_finds_the_ticket(store: TicketStore) -> None:
    store.create(ticket())
    store.update("T1", lambda t: t.model_copy(update={"agent_thread": "C1/1700000000.000100"}))
    found = reopen(store).by_agent_thread("C1/1700000000.000100")
    assert found is not None and found.id == "T1"
    assert store.by_agent_thread("C1/other") is None


def test_rating_is_stored(store: TicketStore) -> None:
    store.create(ticket())
    store.update("T1", lambda t: t.model_copy(update={"status": "resolved", "agent": "U7"}))
    store.update("T1", lambda t: t.model_copy(update={"rating": 4, "rated_at": 7.0}))
    stored = reopen(store).get("T1")
    assert stored is not None and (stored.rating, stored.status, stored.agent) == (
        4,
        "resolved",
        "U7",
    )


def test_update_of_missing_ticket_is_none(store: TicketStore) -> None:
    assert store.update("nope", lambda t: t) is None


def test_sqlite_tickets_share_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "concierge.sqlite3"
    states = SqliteStateStore(path)
    tickets = SqliteTicketStore(path)
    states.save(ConversationState(conversation_id="c1", turns=2))
    tickets.create(ticket())
    assert SqliteStateStore(path).load("c1").turns == 2
    assert SqliteTicketStore(path).get("T1") == ticket()


def test_ticket_ids_are_unique_and_dated() -> None:
    ids = {new_ticket_id(0.0) for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("T-19700101-") for i in ids)
