"""One suite, both state stores: SQLite (file) and Redis (the real server on 127.0.0.1)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from core.infra.errors import StoreUnavailable
from core.state.redis import RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.state.store import (
    ConversationState,
    EscalationState,
    LockTimeout,
    ProductRequest,
    StateStore,
    Turn,
)
from tests.conftest import TEST_REDIS

REDIS_URL = TEST_REDIS


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str) -> StateStore:
    if request.param == "sqlite":
        return SqliteStateStore(tmp_path / "state.sqlite3")
    return RedisStateStore(REDIS_URL, redis_prefix)


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
    return [raw.decode() for raw in store.redis.client.lrange(key, 0, -1)]


def test_unreadable_state_is_quarantined_not_fatal(store: StateStore) -> None:
    if isinstance(store, SqliteStateStore):
        db = sqlite3.connect(store.path)
        db.execute("INSERT INTO conversations VALUES ('bad', ?, 0)", (BAD_STATE,))
        db.commit()
        db.close()
    else:
        assert isinstance(store, RedisStateStore)
        store.redis.client.set(store.redis.key("state", "bad"), BAD_STATE.encode())
    assert quarantined(store, "bad") == []
    assert store.load("bad") == ConversationState(conversation_id="bad")
    assert quarantined(store, "bad") == [BAD_STATE]  # kept for inspection, byte for byte
    # The conversation starts afresh: the bad state is no longer where states live.
    assert reopen(store).load("bad") == ConversationState(conversation_id="bad")
    assert quarantined(store, "bad") == [BAD_STATE]
    store.save(ConversationState(conversation_id="bad", turns=1))
    assert store.load("bad").turns == 1


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
