"""The conversation lock as a lease, on both state stores: renewed while held, and fencing the
holder's save once it is lost (a holder paused past its lease must not overwrite the change of
whoever took the lock meanwhile).

Leases here are a fraction of a second (the stores' `lease_s`); a stalled holder is a real
process stopped with SIGSTOP, as a paused VM or an overloaded host would stop it.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.state.redis import RedisStateStore
from core.state.sqlite import SqliteStateStore
from core.state.store import (
    ConversationState,
    EscalationState,
    LockLost,
    LockTimeout,
    StateStore,
)
from tests.conftest import TEST_REDIS

LEASE_S = 0.3
CLAIMED = EscalationState(status="claimed", ticket_id="T1", reason="asked")


def open_store(kind: str, where: str, prefix: str, lease_s: float = LEASE_S) -> StateStore:
    """A handle on the storage as a separate process would open it."""
    if kind == "sqlite":
        return SqliteStateStore(Path(where), lease_s=lease_s)
    return RedisStateStore(where, prefix, lease_s=lease_s)


@pytest.fixture(params=["sqlite", "redis"])
def where(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> tuple[str, str, str]:
    """(backend, path or URL, key prefix) of a fresh storage."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "state.sqlite3"), ""
    return "redis", TEST_REDIS, redis_prefix


def test_a_lock_held_past_its_lease_is_kept(where: tuple[str, str, str]) -> None:
    holder, other = open_store(*where), open_store(*where)
    other.save(ConversationState(conversation_id="c", escalation=CLAIMED))
    with holder.lock("c"):
        state = holder.load("c")
        # Three leases long: a lease that was not renewed would have run out twice over.
        with pytest.raises(LockTimeout), other.lock("c", timeout=LEASE_S * 3):
            pass
        holder.save(state.model_copy(update={"turns": state.turns + 1}))
    assert other.load("c") == ConversationState(conversation_id="c", escalation=CLAIMED, turns=1)
    with other.lock("c", timeout=1.0):  # released at the end, as before
        pass


def test_renewal_resumes_after_an_idle_spell(where: tuple[str, str, str]) -> None:
    """An idle store keeps no renewal thread; the next lock held long is renewed all the same."""
    holder, other = open_store(*where), open_store(*where)
    with holder.lock("c"):
        pass
    time.sleep(LEASE_S * 2)  # six renewal intervals with nothing held
    with holder.lock("c"), pytest.raises(LockTimeout), other.lock("c", timeout=LEASE_S * 3):
        pass


def _hold_then_save(kind: str, where: str, prefix: str, held: object, go: object,
                    result: object) -> None:
    """Turn A in its own process: take the lock, read, wait, write what it read plus a turn."""
    store = open_store(kind, where, prefix)
    try:
        with store.lock("c"):
            state = store.load("c")
            held.set()  # type: ignore[attr-defined]
            go.wait(30)  # type: ignore[attr-defined]
            store.save(state.model_copy(update={"turns": state.turns + 1}))
        result.put("saved")  # type: ignore[attr-defined]
    except LockLost:
        result.put("lock lost")  # type: ignore[attr-defined]


@contextmanager
def stalled(
    process: multiprocessing.process.BaseProcess, sqlite_path: str | None
) -> Iterator[None]:
    """The process stopped (SIGSTOP) for the body, then resumed. Never stopped inside a write
    transaction on the SQLite file: stopped there, it would block the file for everyone (the
    file's own lock, no lease involved)."""
    pid = process.pid
    assert pid is not None
    while True:
        os.kill(pid, signal.SIGSTOP)
        os.waitpid(pid, os.WUNTRACED)  # returns once it has stopped
        if sqlite_path is None or _writable(sqlite_path):
            break
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.005)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _writable(path: str) -> bool:
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()


def test_a_holder_stalled_past_its_lease_cannot_overwrite_the_next_holder(
    where: tuple[str, str, str],
) -> None:
    kind = where[0]
    ctx = multiprocessing.get_context("fork")
    held, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    turn_a = ctx.Process(target=_hold_then_save, args=(*where, held, go, result))
    turn_a.start()
    try:
        assert held.wait(20)
        agent = open_store(*where)
        # A cannot renew while stopped: its lease runs out and the agent's hand-over takes the
        # lock and changes the escalation.
        with stalled(turn_a, where[1] if kind == "sqlite" else None), agent.lock("c", timeout=10):
            state = agent.load("c")
            agent.save(state.model_copy(update={"escalation": CLAIMED}))
        go.set()
        assert result.get(timeout=20) == "lock lost"
        assert agent.load("c") == ConversationState(conversation_id="c", escalation=CLAIMED)
    finally:
        go.set()
        turn_a.join(20)


def test_a_save_after_the_lease_ran_out_is_refused_even_with_nobody_waiting(
    where: tuple[str, str, str],
) -> None:
    """Redis forgets an expired lease, so its holder cannot tell whether anyone came between:
    the save is refused. SQLite keeps the row until someone takes it: the save goes through,
    since nobody did. Either way, once another holder has taken the lock, never a write."""
    kind = where[0]
    store, other = open_store(*where, lease_s=60.0), open_store(*where)  # no renewal meanwhile
    with store.lock("c"):
        _expire(kind, where, "c")
        if kind == "redis":
            with pytest.raises(LockLost):
                store.save(ConversationState(conversation_id="c", turns=1))
            assert other.load("c") == ConversationState(conversation_id="c")
        else:
            store.save(ConversationState(conversation_id="c", turns=1))
            assert other.load("c").turns == 1
        with other.lock("c", timeout=1.0):
            other.save(ConversationState(conversation_id="c", escalation=CLAIMED))
            with pytest.raises(LockLost):
                store.save(ConversationState(conversation_id="c", turns=2))
    assert other.load("c") == ConversationState(conversation_id="c", escalation=CLAIMED)


def _expire(kind: str, where: tuple[str, str, str], conversation_id: str) -> None:
    """What the clock does to a lease its holder did not renew."""
    if kind == "sqlite":
        with sqlite3.connect(where[1], isolation_level=None) as db:
            db.execute("UPDATE locks SET expires = 0 WHERE id = ?", (conversation_id,))
        return
    store = open_store(*where)
    assert isinstance(store, RedisStateStore)
    store.redis.client.delete(store.redis.key("lock", conversation_id))


def test_saves_outside_a_lock_are_not_fenced(where: tuple[str, str, str]) -> None:
    """Data rights, tools and another thread of the holder's process save without the lock, as
    before; only the holding thread's saves are checked."""
    store = open_store(*where)
    store.save(ConversationState(conversation_id="c", turns=1))
    with store.lock("c"):
        elsewhere = threading.Thread(
            target=store.save, args=(ConversationState(conversation_id="c", turns=2),)
        )
        elsewhere.start()
        elsewhere.join()
        assert store.load("c").turns == 2
        store.save(ConversationState(conversation_id="c", turns=3))  # the holder: still owns it
    store.save(ConversationState(conversation_id="c", turns=4))
    assert store.load("c").turns == 4
