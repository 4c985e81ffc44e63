"""Conversation state in one SQLite file (WAL): the embedded default, survives restarts.

Each thread gets its own connection. The per-conversation lock is a lease row, so it also
holds between processes sharing the file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from core.logs import event
from core.state import ConversationState, LockTimeout, StoreUnavailable

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, at REAL NOT NULL);
"""

LEASE_S = 60.0  # a crashed turn's lock frees itself after this long
POLL_S = 0.01


class SqliteStateStore:
    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(SCHEMA)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreUnavailable(self._explain(exc)) from exc

    def load(self, conversation_id: str) -> ConversationState:
        row = self._query("SELECT state FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            return ConversationState(conversation_id=conversation_id)
        try:
            return ConversationState.model_validate_json(row[0])
        except ValidationError as exc:
            # Keep the unreadable state for inspection, then start the conversation afresh.
            with self._guard(), self._transaction() as db:
                db.execute(
                    "INSERT INTO quarantine VALUES (?, ?, ?, ?)",
                    (conversation_id, row[0], str(exc)[:500], time.time()),
                )
                db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            event(log, "store.state_quarantined", logging.WARNING, conversation=conversation_id)
            return ConversationState(conversation_id=conversation_id)

    def save(self, state: ConversationState) -> None:
        with self._guard(), self._transaction() as db:
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                "SET state = excluded.state, updated = excluded.updated",
                (state.conversation_id, state.model_dump_json(), time.time()),
            )

    @contextmanager
    def lock(self, conversation_id: str, timeout: float = 30.0) -> Iterator[None]:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while not self._try_lock(conversation_id, token):
            if time.monotonic() > deadline:
                raise LockTimeout(f"conversation {conversation_id} is busy")
            time.sleep(POLL_S)
        try:
            yield
        finally:
            with self._guard(), self._transaction() as db:
                db.execute("DELETE FROM locks WHERE id = ? AND token = ?", (conversation_id, token))

    def _try_lock(self, conversation_id: str, token: str) -> bool:
        now = time.time()
        with self._guard(), self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO locks VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                "SET token = excluded.token, expires = excluded.expires WHERE locks.expires < ?",
                (conversation_id, token, now + LEASE_S, now),
            )
            return cursor.rowcount == 1

    def _query(self, sql: str, args: tuple[object, ...]) -> tuple[str, ...] | None:
        with self._guard():
            row: tuple[str, ...] | None = self._connection().execute(sql, args).fetchone()
            return row

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn SQLite failures into StoreUnavailable with a message a person can act on."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            self._local.db = None  # reconnect next time
            raise StoreUnavailable(self._explain(exc)) from exc

    def _explain(self, exc: BaseException) -> str:
        text = str(exc)
        if "locked" in text:
            return f"the state file {self.path} is locked by another program ({text})"
        if "not a database" in text or "malformed" in text:
            return (
                f"the state file {self.path} is damaged ({text}); move it aside to start "
                "afresh, or restore it from a backup"
            )
        return f"the state file {self.path} cannot be used: {text}"
