"""One suite, both ticket stores: SQLite (file) and Redis (the real server, DB 14)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from core.handover.tickets.redis import RedisTicketStore
from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import (
    Change,
    Ticket,
    TicketEntry,
    TicketFacts,
    TicketStatus,
    TicketStore,
    fields_json,
    new_ticket_id,
)
from core.state.sqlite import SqliteStateStore
from core.state.store import ConversationState
from tests.conftest import TEST_REDIS, redis_traces, sqlite_traces

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


def ticket(
    ticket_id: str = "T1", conversation_id: str = "c1", at: float = 100.0, customer: str = "u1"
) -> Ticket:
    return Ticket(
        id=ticket_id,
        conversation_id=conversation_id,
        customer=customer,
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


def test_list_pages_through_statuses_oldest_first(store: TicketStore) -> None:
    for n in range(7):
        store.create(ticket(f"T{n}", f"c{n}", at=100.0 + n))
    store.update("T2", claim("dana"))
    store.update("T5", claim("dana"))
    pages = [[t.id for t in store.list(limit=3, offset=offset)] for offset in (0, 3, 6, 9)]
    assert pages == [["T0", "T1", "T2"], ["T3", "T4", "T5"], ["T6"], []]
    assert [t.id for t in store.list(("claimed",), limit=1, offset=1)] == ["T5"]


def test_counts_by_status(store: TicketStore) -> None:
    assert store.counts() == {"open": 0, "claimed": 0, "resolved": 0, "handed_back": 0}
    for n in range(3):
        store.create(ticket(f"T{n}", f"c{n}", at=100.0 + n))
    store.update("T1", claim("dana"))
    store.update("T2", lambda t: t.model_copy(update={"status": "resolved", "rating": 4}))
    assert store.counts() == {"open": 1, "claimed": 1, "resolved": 1, "handed_back": 0}


def test_facts_are_what_the_dashboard_counts(store: TicketStore) -> None:
    store.create(ticket("T0", "c0", at=50.0))
    store.create(ticket("T1", "c1", at=150.0))
    store.create(ticket("T2", "c2", at=250.0))
    store.update("T2", lambda t: t.model_copy(update={"status": "resolved", "rating": 2}))
    facts = sorted(store.facts(since=100.0))
    assert facts == [
        TicketFacts(150.0, "open", "customer asked for a person", None),
        TicketFacts(250.0, "resolved", "customer asked for a person", 2),
    ]


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


# -- data rights: find, anonymise and purge a customer's tickets -----------------------------

PERSON = "telegram:4242001"  # distinctive enough that finding it anywhere means it was left
SECRET = "deliver it to 12 Elm Street"  # what the person said
THREAD = "C1/1700000000.000100"


def traces(store: TicketStore, *needles: str) -> list[str]:
    """Whatever the backing storage still holds that mentions one of `needles`."""
    if isinstance(store, SqliteTicketStore):
        return sqlite_traces(store.path, *needles)
    assert isinstance(store, RedisTicketStore)
    return redis_traces(store.redis.client, store.redis.prefix, *needles)


def closed(at: float, status: TicketStatus = "resolved") -> Change:
    return lambda t: t.model_copy(update={"status": status, "closed_at": at, "updated_at": at})


def test_tickets_of_a_customer(store: TicketStore) -> None:
    store.create(ticket("T1", "c1", at=300.0, customer=PERSON))
    store.create(ticket("T2", "c2", at=100.0, customer="slack:T1:U2"))
    store.create(ticket("T3", "c3", at=200.0, customer=PERSON))
    store.update("T3", closed(250.0))  # closed tickets are the customer's too
    store.append("T3", TicketEntry(role="customer", text="thanks", at=251.0))
    found = reopen(store).of_customer(PERSON)
    assert [t.id for t in found] == ["T3", "T1"]  # oldest first
    assert found[0].status == "resolved" and found[0].transcript[-1].text == "thanks"
    assert [t.id for t in store.of_customer("slack:T1:U2")] == ["T2"]
    assert store.of_customer("telegram:999") == []


def test_anonymise_leaves_nothing_of_the_person(store: TicketStore) -> None:
    """An open ticket (linked to its agent thread) and a closed, rated one: both keep what
    support counts and lose everything that leads back to the person."""
    for ticket_id, at in (("T1", 100.0), ("T2", 200.0)):
        store.create(
            ticket(ticket_id, f"{PERSON}:chat", at=at, customer=PERSON).model_copy(
                update={
                    "verified_customer": "C-31337",
                    "transcript": (TicketEntry(role="customer", text=SECRET, at=at - 1),),
                }
            )
        )
        store.append(ticket_id, TicketEntry(role="note", text=f"re {SECRET}", at=at + 1))
    store.update("T1", closed(150.0))
    store.update("T1", lambda t: t.model_copy(update={"rating": 2, "rated_at": 160.0}))
    store.update(
        "T2",
        lambda t: t.model_copy(update={"status": "claimed", "agent": "U7", "agent_thread": THREAD}),
    )
    store.create(ticket("T3", "c3", at=300.0))  # someone else's
    before = {ticket_id: store.get(ticket_id) for ticket_id in ("T1", "T2")}

    store.anonymise("T1")
    store.anonymise("T2")
    store.anonymise("missing")  # no error

    for ticket_id, was in before.items():
        assert was is not None
        now = reopen(store).get(ticket_id)
        assert now is not None
        assert now.model_dump(include=KEPT) == was.model_dump(include=KEPT)
        assert (now.customer, now.verified_customer, now.conversation_id) == (
            "deleted",
            None,
            f"deleted:{ticket_id}",
        )
        assert now.agent_thread is None and now.transcript == ()
    assert store.of_customer(PERSON) == []
    assert store.active_for(f"{PERSON}:chat") is None
    assert store.by_agent_thread(THREAD) is None
    assert traces(store, PERSON, "C-31337", "Elm Street", THREAD) == []
    assert store.get("T3") == ticket("T3", "c3", at=300.0)
    assert [t.id for t in store.list()] == ["T2", "T3"]  # still counted as claimed


KEPT = {
    "status",
    "reason",
    "rating",
    "agent",
    "platform",
    "intents",
    "sentiment_trend",
    "products_shown",
    "created_at",
    "updated_at",
    "claimed_at",
    "closed_at",
    "rated_at",
}


def test_purge_deletes_tickets_closed_before(
    store: TicketStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One candidate at a time, so a kept ticket sits ahead of those deleted after it.
    monkeypatch.setattr("core.handover.tickets.redis.PURGE_BATCH", 1)
    for n, at in enumerate((90.0, 100.0, 110.0, 120.0, 130.0, 140.0)):
        store.create(ticket(f"TK{n}", f"{PERSON}:c{n}", at=at, customer=PERSON))
    store.update("TK0", closed(260.0))  # closed after the cut-off: kept
    store.update("TK1", closed(200.0))
    store.update("TK1", lambda t: t.model_copy(update={"agent_thread": THREAD}))
    store.update("TK2", closed(300.0, "handed_back"))  # kept
    store.update("TK3", closed(240.0, "handed_back"))
    # TK4 stays open
    store.update("TK5", closed(210.0))
    assert store.purge(250.0) == 3
    assert [store.get(ticket_id) for ticket_id in ("TK1", "TK3", "TK5")] == [None] * 3
    assert store.by_agent_thread(THREAD) is None
    assert [t.id for t in reopen(store).of_customer(PERSON)] == ["TK0", "TK2", "TK4"]
    assert [t.id for t in store.list(("resolved", "handed_back"))] == ["TK0", "TK2"]
    assert len(store.get("TK0").transcript) == 2  # type: ignore[union-attr]
    # Entries, status and customer indexes, conversation and thread links: nothing is left.
    assert traces(store, "TK1", "TK3", "TK5", f"{PERSON}:c1", THREAD) == []
    assert store.purge(250.0) == 0
    assert store.purge(1000.0) == 2  # never the open one
    assert [t.id for t in store.of_customer(PERSON)] == ["TK4"]


OLD_TICKET_SCHEMA = """
CREATE TABLE IF NOT EXISTS tickets (
    id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, status TEXT NOT NULL,
    agent_thread TEXT, created REAL NOT NULL, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tickets_conversation ON tickets (conversation_id, status);
CREATE INDEX IF NOT EXISTS tickets_status ON tickets (status, created);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_thread ON tickets (agent_thread);
CREATE TABLE IF NOT EXISTS ticket_entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, ticket_id TEXT NOT NULL, entry TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ticket_entries_ticket ON ticket_entries (ticket_id, seq);
"""  # the schema before tickets were found by customer


def test_sqlite_file_of_the_old_schema_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    old = ticket("T1", "c1", at=100.0, customer=PERSON)
    db = sqlite3.connect(path)
    db.executescript(OLD_TICKET_SCHEMA)
    db.execute(
        "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?)",
        (old.id, old.conversation_id, old.status, None, old.created_at, fields_json(old)),
    )
    db.executemany(
        "INSERT INTO ticket_entries (ticket_id, entry) VALUES (?, ?)",
        [(old.id, entry.model_dump_json()) for entry in old.transcript],
    )
    db.commit()
    db.close()

    store = SqliteTicketStore(path)
    assert store.of_customer(PERSON) == [old]
    store.create(ticket("T2", "c2", at=200.0, customer=PERSON))
    again = SqliteTicketStore(path)  # a second open finds nothing left to upgrade
    assert [t.id for t in again.of_customer(PERSON)] == ["T1", "T2"]
    again.anonymise("T1")
    assert [t.id for t in again.of_customer(PERSON)] == ["T2"]


def test_ticket_ids_are_unique_and_dated() -> None:
    ids = {new_ticket_id(0.0) for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("T-19700101-") for i in ids)


def test_redis_facts_of_tickets_stored_before_the_facts_hash(redis_prefix: str) -> None:
    store = RedisTicketStore(REDIS_URL, redis_prefix)
    store.create(ticket("T0", "c0", at=150.0))
    facts_key = store.redis.key("ticket-facts", "all")
    store.redis.client.delete(facts_key)
    assert [fact.created_at for fact in store.facts(100.0)] == [150.0]
    assert store.redis.client.hexists(facts_key, "T0")  # filled in for the next read
    store.update("T0", lambda t: t.model_copy(update={"status": "resolved", "closed_at": 160.0}))
    assert store.purge(closed_before=200.0) == 1
    assert not store.redis.client.hexists(facts_key, "T0")
