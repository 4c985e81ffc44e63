"""One SQLite file shared by the embedded stores (state, tickets, deliveries): WAL mode, one
connection per thread, immediate transactions, and failures explained to a person."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.infra.errors import StoreUnavailable


class SqliteFile:
    def __init__(self, path: Path, schema: str, what: str, busy_timeout_s: float = 5.0) -> None:
        """Open (creating if needed) `path` and its `schema`; `what` names it in messages."""
        self.path = path
        self.what = what
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.connection().executescript(schema)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreUnavailable(self.explain(exc)) from exc

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must not be shared between threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the file's write lock at once, rolled back on error."""
        with self.guard():
            db = self.connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Turn SQLite failures into StoreUnavailable with a message a person can act on."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            self._local.db = None  # reconnect next time
            raise StoreUnavailable(self.explain(exc)) from exc

    def explain(self, exc: BaseException) -> str:
        text = str(exc)
        if "locked" in text:
            return f"the {self.what} {self.path} is locked by another program ({text})"
        if "not a database" in text or "malformed" in text:
            return (
                f"the {self.what} {self.path} is damaged ({text}); move it aside to start "
                "afresh, or restore it from a backup"
            )
        return f"the {self.what} {self.path} cannot be used: {text}"
