"""Conversation state in one SQLite file (WAL): the embedded default, survives restarts.

Each thread gets its own connection. The per-conversation lock is a lease row (a token and an
expiry), so it also holds between processes sharing the file and a crashed holder frees it. It
is renewed while held, and a save on the holding thread is one statement that writes only while
the row still holds the holder's token (see core/state/lease.py): a process paused past its lease
cannot overwrite what the lock's next holder saved.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from core.infra.logs import event
from core.infra.sqlite_file import AddedColumn, SqliteFile
from core.state.lease import LOCK_LEASE_S, HeldLocks
from core.state.store import ConversationState, LockLost, acquire

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, updated REAL NOT NULL,
    user_id TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS conversations_user ON conversations (user_id);
CREATE INDEX IF NOT EXISTS conversations_updated ON conversations (updated);
CREATE TABLE IF NOT EXISTS locks (
    id TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL, at REAL NOT NULL);
"""

# Files made before conversations knew their user: the user is read back out of each state.
ADDED = (
    AddedColumn(
        "conversations",
        "user_id",
        "TEXT NOT NULL DEFAULT ''",
        "UPDATE conversations SET user_id = coalesce(json_extract(state, '$.user_id'), '') "
        "WHERE json_valid(state)",
    ),
)

_INSERT = "INSERT INTO conversations (id, state, updated, user_id)"
# After `INSERT ... SELECT`, an upsert needs the SELECT to have a WHERE clause (SQLite would read
# ON CONFLICT as a join's ON otherwise); the fenced save's has one.
_UPSERT = (
    "ON CONFLICT(id) DO UPDATE SET state = excluded.state, "
    "updated = excluded.updated, user_id = excluded.user_id"
)


class SqliteStateStore:
    def __init__(
        self,
        path: Path,
        busy_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        lease_s: float = LOCK_LEASE_S,
    ) -> None:
        """`clock` stamps saves and quarantines (what `purge` compares); locks use real time."""
        self.path = path
        self.clock = clock
        self.file = SqliteFile(path, SCHEMA, "state file", busy_timeout_s, ADDED)
        self.held = HeldLocks(lease_s, self._renew_lease)

    def load(self, conversation_id: str) -> ConversationState:
        row = self._query("SELECT state FROM conversations WHERE id = ?", (conversation_id,))
        if row is None:
            return ConversationState(conversation_id=conversation_id)
        try:
            return ConversationState.model_validate_json(row[0])
        except ValidationError as exc:
            # Keep the unreadable state for inspection, then start the conversation afresh.
            with self.file.guard(), self.file.transaction() as db:
                db.execute(
                    "INSERT INTO quarantine VALUES (?, ?, ?, ?)",
                    (conversation_id, row[0], str(exc)[:500], self.clock()),
                )
                db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            event(log, "store.state_quarantined", logging.WARNING, conversation=conversation_id)
            return ConversationState(conversation_id=conversation_id)

    def save(self, state: ConversationState) -> None:
        """Fenced by the lock this thread holds on the conversation, if any: the row is written
        only while the lock row still holds this holder's token (an expired lease nobody took
        yet still does: no other writer came between)."""
        row = (state.conversation_id, state.model_dump_json(), self.clock(), state.user_id)
        token = self.held.token(state.conversation_id)
        with self.file.guard(), self.file.transaction() as db:
            if token is None:
                db.execute(f"{_INSERT} VALUES (?, ?, ?, ?) {_UPSERT}", row)
                return
            written = db.execute(
                f"{_INSERT} SELECT ?, ?, ?, ? WHERE EXISTS "
                f"(SELECT 1 FROM locks WHERE id = ? AND token = ?) {_UPSERT}",
                (*row, state.conversation_id, token),
            ).rowcount
        if not written:
            raise LockLost(
                f"conversation {state.conversation_id}: its lock was lost before the save"
            )

    def conversations_of(self, user_id: str) -> list[str]:
        with self.file.guard():
            rows = (
                self.file.connection()
                .execute("SELECT id FROM conversations WHERE user_id = ? ORDER BY id", (user_id,))
                .fetchall()
            )
        return [row[0] for row in rows]

    def delete(self, conversation_id: str) -> None:
        with self.file.guard(), self.file.transaction() as db:
            for table in ("conversations", "locks", "quarantine"):
                db.execute(f"DELETE FROM {table} WHERE id = ?", (conversation_id,))

    def purge(self, idle_before: float) -> int:
        """Also drops the quarantined states of conversations that never came back after their
        state was set aside (quarantining removed their row, so no `updated` speaks for them)."""
        idle = "SELECT id FROM conversations WHERE updated < ?"
        with self.file.guard(), self.file.transaction() as db:
            db.execute(f"DELETE FROM locks WHERE id IN ({idle})", (idle_before,))
            db.execute(f"DELETE FROM quarantine WHERE id IN ({idle})", (idle_before,))
            db.execute(
                "DELETE FROM quarantine WHERE at < ? AND id NOT IN (SELECT id FROM conversations)",
                (idle_before,),
            )
            cursor = db.execute("DELETE FROM conversations WHERE updated < ?", (idle_before,))
            return cursor.rowcount

    @contextmanager
    def lock(self, conversation_id: str, timeout: float = 30.0) -> Iterator[None]:
        token = uuid.uuid4().hex
        acquire(lambda: self._try_lock(conversation_id, token), conversation_id, timeout)
        try:
            with self.held.holding(conversation_id, token):
                yield
        finally:
            with self.file.guard(), self.file.transaction() as db:
                db.execute("DELETE FROM locks WHERE id = ? AND token = ?", (conversation_id, token))

    def _try_lock(self, conversation_id: str, token: str) -> bool:
        now = time.time()
        with self.file.guard(), self.file.transaction() as db:
            cursor = db.execute(
                "INSERT INTO locks VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE "
                "SET token = excluded.token, expires = excluded.expires WHERE locks.expires < ?",
                (conversation_id, token, now + self.held.lease_s, now),
            )
            return cursor.rowcount == 1

    def _renew_lease(self, conversation_id: str, token: str, lease_s: float) -> bool:
        with self.file.guard(), self.file.transaction() as db:
            cursor = db.execute(
                "UPDATE locks SET expires = ? WHERE id = ? AND token = ?",
                (time.time() + lease_s, conversation_id, token),
            )
            return cursor.rowcount == 1

    def _query(self, sql: str, args: tuple[object, ...]) -> tuple[str, ...] | None:
        with self.file.guard():
            row: tuple[str, ...] | None = self.file.connection().execute(sql, args).fetchone()
            return row
