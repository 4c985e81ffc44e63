"""One SQLite file shared by the embedded stores (state, tickets, deliveries): WAL mode, one
connection per thread, immediate transactions, failures explained to a person, and columns
added to files made before those columns existed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.infra.errors import StoreUnavailable


@dataclass(frozen=True)
class AddedColumn:
    """A column a table gained after files holding that table were already in use.

    `CREATE TABLE IF NOT EXISTS` leaves an old table as it is, so the column is added to it
    (`ALTER TABLE ... ADD COLUMN`, which appends it) and `backfill`, an UPDATE, fills it from
    what the rows already hold. The schema's CREATE TABLE lists the column last, the same place.
    """

    table: str
    column: str
    declaration: str  # e.g. "TEXT NOT NULL DEFAULT ''" (a NOT NULL column needs a default)
    backfill: str = ""


class SqliteFile:
    def __init__(
        self,
        path: Path,
        schema: str,
        what: str,
        busy_timeout_s: float = 5.0,
        added: tuple[AddedColumn, ...] = (),
    ) -> None:
        """Open (creating if needed) `path` and its `schema`, after adding the `added` columns
        an older file lacks (so the schema's indexes on them apply); `what` names it in
        messages."""
        self.path = path
        self.what = what
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if added:
                self._add_columns(added)
            self.connection().executescript(schema)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise StoreUnavailable(self.explain(exc)) from exc

    def _add_columns(self, added: tuple[AddedColumn, ...]) -> None:
        """Add each missing column to its table where the table exists (a new file gets it
        from the schema). Checked again inside an immediate transaction, so two processes
        opening an old file at once do not both add it, and a current file takes no write lock.
        """
        with self.guard():
            if not self._missing(self.connection(), added):
                return
        with self.transaction() as db:
            for change in self._missing(db, added):
                db.execute(
                    f"ALTER TABLE {change.table} ADD COLUMN {change.column} {change.declaration}"
                )
                if change.backfill:
                    db.execute(change.backfill)

    @staticmethod
    def _missing(db: sqlite3.Connection, added: tuple[AddedColumn, ...]) -> list[AddedColumn]:
        """The columns of `added` whose table exists without them."""
        missing = []
        for change in added:
            names = {row[1] for row in db.execute(f"PRAGMA table_info({change.table})")}
            if names and change.column not in names:
                missing.append(change)
        return missing

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must not be shared between threads)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows are overwritten, not left in free pages: a customer's deleted
            # conversation cannot be read back from the file.
            db.execute("PRAGMA secure_delete=ON")
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
