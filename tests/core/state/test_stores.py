"""One suite, both state stores: SQLite (file) and Redis (the real server on 127.0.0.1)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from core.infra.errors import StoreUnavailable
from core.infra.redis_client import texts
from core.state.redis import STATE_TTL_S, RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.state.store import (
    ConversationState,
    EscalationState,
    LockTimeout,
    ProductRequest,
    StateStore,
    Turn,
)
from tests.conftest import TEST_REDIS, redis_traces, sqlite_traces

REDIS_URL = TEST_REDIS


class Clock:
    """The time the stores stamp saves with, set by the test (no sleeping)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "redis"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str, clock: Clock
) -> StateStore:
    if request.param == "sqlite":
        return SqliteStateStore(tmp_path / "state.sqlite3", clock=clock)
    return RedisStateStore(REDIS_URL, redis_prefix, clock=clock)


def reopen(store: StateStore) -> StateStore:
    """A second, independent handle on the same storage (as a restarted process has)."""
    if isinstance(store, SqliteStateStore):
        return SqliteStateStore(store.path)
    assert isinstance(store, RedisStateStore)
    return RedisStateStore(store.redis.url, store.redis.prefix)


def full_state() -> ConversationState:
    return ConversationState(
        conversation_id="terminal:u1:abc",
        user_id="u1",
        transcript=(Turn(role="customer", text="I need a jacket ☔", at=1.0, intent="recommend"),),
        request=ProductRequest(
            text="jacket", category="outerwear", budget_max=100.0, attributes=("waterproof",)
        ),
        shown=("P1", "P2"),
        sentiments=("neutral", "negative"),
        escalation=EscalationState(status="open", ticket_id="T7", reason="asked"),
        seen_message_ids=("m1",),
        turns=3,
    )


def test_unknown_conversation_is_fresh(store: StateStore) -> None:
    state = store.load("nobody")
    assert state == ConversationState(conversation_id="nobody")


def test_round_trip_survives_restart(store: StateStore) -> None:
    state = full_state()
    store.save(state)
    assert reopen(store).load(state.conversation_id) == state


def test_save_replaces(store: StateStore) -> None:
    store.save(full_state())
    newer = full_state().model_copy(update={"turns": 4, "shown": ()})
    store.save(newer)
    assert store.load(newer.conversation_id) == newer


def test_lock_serialises_turns_of_one_conversation(store: StateStore) -> None:
    """Concurrent read-modify-write turns never lose an update while holding the lock."""

    def turn() -> None:
        handle = reopen(store)
        for _ in range(10):
            with handle.lock("c"):
                state = handle.load("c")
                time.sleep(0.001)
                handle.save(state.model_copy(update={"turns": state.turns + 1}))

    threads = [threading.Thread(target=turn) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.load("c").turns == 40


def test_other_conversations_are_not_blocked(store: StateStore) -> None:
    with store.lock("a"):
        started = time.monotonic()
        with reopen(store).lock("b", timeout=1.0):
            pass
        assert time.monotonic() - started < 0.5


def test_lock_times_out_when_held(store: StateStore) -> None:
    with store.lock("a"), pytest.raises(LockTimeout), reopen(store).lock("a", timeout=0.2):
        pass


def _hold_lock(kind: str, where: str, prefix: str, held: object, release: object) -> None:
    handle: StateStore = (
        SqliteStateStore(Path(where)) if kind == "sqlite" else RedisStateStore(where, prefix)
    )
    with handle.lock("shared"):
        held.set()  # type: ignore[attr-defined]
        release.wait(10)  # type: ignore[attr-defined]


def test_lock_holds_across_processes(store: StateStore) -> None:
    kind = "sqlite" if isinstance(store, SqliteStateStore) else "redis"
    where = str(store.path) if isinstance(store, SqliteStateStore) else REDIS_URL
    prefix = store.redis.prefix if isinstance(store, RedisStateStore) else ""
    ctx = multiprocessing.get_context("fork")
    held, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_lock, args=(kind, where, prefix, held, release))
    other.start()
    try:
        assert held.wait(20)
        with pytest.raises(LockTimeout), store.lock("shared", timeout=0.3):
            pass
        release.set()
        other.join(10)
        with store.lock("shared", timeout=2.0):
            pass
    finally:
        release.set()
        other.join(10)


BAD_STATE = '{"turns": "many"}'


def corrupt(store: StateStore, conversation_id: str) -> None:
    """Overwrite a conversation's saved state with one that no longer validates (an older
    release's, or a damaged one), as the storage itself holds it."""
    if isinstance(store, SqliteStateStore):
        db = sqlite3.connect(store.path)
        db.execute(
            "INSERT INTO conversations (id, state, updated) VALUES (?, ?, 0) "
            "ON CONFLICT(id) DO UPDATE SET state = excluded.state",
            (conversation_id, BAD_STATE),
        )
        db.commit()
        db.close()
    else:
        assert isinstance(store, RedisStateStore)
        key = store.redis.key("state", conversation_id)
        store.redis.client.set(key, BAD_STATE.encode(), keepttl=True)


def quarantined(store: StateStore, conversation_id: str) -> list[str]:
    """The unreadable states the store set aside for `conversation_id`, oldest first."""
    if isinstance(store, SqliteStateStore):
        db = sqlite3.connect(store.path)
        try:
            rows = db.execute(
                "SELECT state, error FROM quarantine WHERE id = ? ORDER BY at", (conversation_id,)
            ).fetchall()
        finally:
            db.close()
        assert all("turns" in error for _, error in rows)  # the reason is kept with it
        return [state for state, _ in rows]
    assert isinstance(store, RedisStateStore)
    key = store.redis.key("quarantine", conversation_id)
    return texts(store.redis.client.lrange(key, 0, -1))


def test_unreadable_state_is_quarantined_not_fatal(store: StateStore) -> None:
    corrupt(store, "bad")
    assert quarantined(store, "bad") == []
    assert store.load("bad") == ConversationState(conversation_id="bad")
    assert quarantined(store, "bad") == [BAD_STATE]  # kept for inspection, byte for byte
    # The conversation starts afresh: the bad state is no longer where states live.
    assert reopen(store).load("bad") == ConversationState(conversation_id="bad")
    assert quarantined(store, "bad") == [BAD_STATE]
    store.save(ConversationState(conversation_id="bad", turns=1))
    assert store.load("bad").turns == 1


# -- data rights: find, delete and purge conversations ---------------------------------------

PERSON = "telegram:501"  # distinctive enough that finding it anywhere means it was left behind


def said(conversation_id: str, user_id: str = PERSON, turns: int = 1) -> ConversationState:
    return ConversationState(
        conversation_id=conversation_id,
        user_id=user_id,
        transcript=(Turn(role="customer", text=f"this is {user_id}", at=1.0),),
        turns=turns,
    )


def traces(store: StateStore, *needles: str) -> list[str]:
    """Whatever the backing storage still holds that mentions one of `needles`."""
    if isinstance(store, SqliteStateStore):
        return sqlite_traces(store.path, *needles)
    assert isinstance(store, RedisStateStore)
    return redis_traces(store.redis.client, store.redis.prefix, *needles)


def test_conversations_of_a_user(store: StateStore) -> None:
    store.save(said(f"{PERSON}:a"))
    store.save(said("slack:T1:U2:x", user_id="slack:T1:U2"))
    store.save(said(f"{PERSON}:b"))
    store.save(said(f"{PERSON}:a", turns=2))  # saved again: still listed once
    assert store.conversations_of(PERSON) == [f"{PERSON}:a", f"{PERSON}:b"]
    assert reopen(store).conversations_of("slack:T1:U2") == ["slack:T1:U2:x"]
    assert store.conversations_of("telegram:999") == []


def test_delete_forgets_a_conversation(store: StateStore) -> None:
    first, second = f"{PERSON}:a", f"{PERSON}:b"
    store.save(said(first))
    corrupt(store, first)
    store.load(first)  # quarantined: a copy of the person's words kept aside
    store.save(said(first))
    store.save(said(second))
    if isinstance(store, SqliteStateStore):  # the lease of a turn that crashed
        db = sqlite3.connect(store.path)
        db.execute("INSERT INTO locks VALUES (?, 'crashed', ?)", (first, time.time() + 60))
        db.commit()
        db.close()
    assert quarantined(store, first) == [BAD_STATE]

    store.delete(first)
    assert reopen(store).load(first) == ConversationState(conversation_id=first)
    assert store.conversations_of(PERSON) == [second]
    assert quarantined(store, first) == []
    assert traces(store, first) == []
    store.delete(first)  # nothing left to delete is no error
    store.delete("never-seen")

    store.delete(second)
    assert store.conversations_of(PERSON) == []
    assert traces(store, PERSON) == []  # the user's own index went with the last one


def test_purge_deletes_only_idle_conversations(
    store: StateStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core.state.redis.PURGE_BATCH", 2)  # several batches
    start = clock.now
    idle = [f"{PERSON}:idle{n}" for n in range(5)]
    for conversation_id in [*idle, f"{PERSON}:back"]:
        store.save(said(conversation_id))
    clock.now = start + 100
    store.save(said(f"{PERSON}:back"))  # came back: no longer idle
    store.save(said("telegram:777:new", user_id="telegram:777"))

    assert store.purge(start + 50) == 5
    assert store.conversations_of(PERSON) == [f"{PERSON}:back"]
    assert store.load(idle[0]) == ConversationState(conversation_id=idle[0])
    assert traces(store, *idle) == []
    assert store.load(f"{PERSON}:back") == said(f"{PERSON}:back")
    assert store.conversations_of("telegram:777") == ["telegram:777:new"]
    assert store.purge(start + 50) == 0
    assert reopen(store).purge(start + 101) == 2
    assert traces(store, PERSON, "telegram:777") == []


def test_purge_drops_what_was_quarantined_of_idle_conversations(
    store: StateStore, clock: Clock
) -> None:
    start = clock.now
    gone, back = f"{PERSON}:gone", f"{PERSON}:back"
    for conversation_id in (gone, back):
        store.save(said(conversation_id))
        corrupt(store, conversation_id)
        store.load(conversation_id)
    clock.now = start + 100
    store.save(said(back))  # came back after its state was set aside
    assert store.purge(start + 50) == 0  # `gone` had no state left to count
    assert quarantined(store, gone) == []
    assert quarantined(store, back) == [BAD_STATE]
    assert store.conversations_of(PERSON) == [back]


def test_redis_lists_no_expired_conversation(redis_prefix: str) -> None:
    store = RedisStateStore(REDIS_URL, redis_prefix)
    store.save(said(f"{PERSON}:a"))
    store.save(said(f"{PERSON}:b"))
    store.redis.client.delete(store.redis.key("state", f"{PERSON}:a"))  # as its TTL does
    assert store.conversations_of(PERSON) == [f"{PERSON}:b"]


def test_redis_user_index_expires_with_the_states(redis_prefix: str) -> None:
    store = RedisStateStore(REDIS_URL, redis_prefix)
    store.save(said(f"{PERSON}:a"))
    for key in (store.redis.key("state", f"{PERSON}:a"), store.user_key(PERSON)):
        assert 0 < store.redis.client.ttl(key) <= STATE_TTL_S


OLD_STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, at REAL NOT NULL);
"""  # the schema before conversations knew their user


def test_sqlite_file_of_the_old_schema_is_upgraded(tmp_path: Path) -> None:
    """A file made before states were indexed by user: its rows are found by their user."""
    path = tmp_path / "state.sqlite3"
    old = said(f"{PERSON}:old")
    db = sqlite3.connect(path)
    db.executescript(OLD_STATE_SCHEMA)
    db.execute(
        "INSERT INTO conversations VALUES (?, ?, 5.0)", (old.conversation_id, old.model_dump_json())
    )
    db.execute("INSERT INTO conversations VALUES ('damaged', 'not json', 5.0)")
    db.commit()
    db.close()

    store = SqliteStateStore(path)
    assert store.conversations_of(PERSON) == [old.conversation_id]
    assert store.load(old.conversation_id) == old
    store.save(said(f"{PERSON}:new"))
    again = SqliteStateStore(path)  # a second open finds nothing left to upgrade
    assert again.conversations_of(PERSON) == [f"{PERSON}:new", old.conversation_id]
    assert again.purge(6.0) == 2  # the old row and the damaged one, by their `updated`
    assert again.conversations_of(PERSON) == [f"{PERSON}:new"]


def test_corrupted_sqlite_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match="damaged"):
        SqliteStateStore(path)


def test_locked_sqlite_file_is_reported(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.sqlite3", busy_timeout_s=0.1)
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.save(full_state())
    finally:
        blocker.execute("ROLLBACK")
    store.save(full_state())  # usable again once the other program lets go
    assert store.load(full_state().conversation_id) == full_state()


def test_unreachable_redis_is_reported() -> None:
    store = RedisStateStore("redis://:secret@127.0.0.1:1/0", timeout_s=0.2)
    with pytest.raises(StoreUnavailable, match="unavailable") as caught:
        store.load("x")
    assert "secret" not in str(caught.value)
