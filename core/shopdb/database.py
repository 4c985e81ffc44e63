"""The store database: one SQLAlchemy engine on SQLite (embedded default) or PostgreSQL.

`ShopDatabase(url)` opens it; `migrate()` brings the schema to the newest Alembic revision
(the import command does this; readers only check it). Reads return the shop's pydantic models,
so the conversation core never sees a row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from pydantic_core import to_json
from sqlalchemy import (
    JSON,
    Connection,
    Date,
    DateTime,
    Engine,
    Table,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from core.infra.errors import StoreNotReady
from core.infra.logs import event as log_event
from core.shop.catalog import Product
from core.shop.customers import Customer
from core.shop.interactions import Interaction
from core.shop.knowledge import Article
from core.shop.orders import Order, normalize_order_id
from core.shop.synonyms import Synonym
from core.shopdb import migrations
from core.shopdb.tables import (
    articles,
    customers,
    interactions,
    orders,
    products,
    synonyms,
    versions,
)

log = logging.getLogger(__name__)

# Interactions that say a customer does not want a product: never learned as interest.
NOT_INTERESTED = ("not_for_me", "dislike", "return")

MIGRATIONS = Path(migrations.__file__).parent


def database_url(url: str) -> URL:
    """A SQLAlchemy URL; `postgresql://` means psycopg 3 (the driver Concierge installs)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def shown_url(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    return (make_url(url) if isinstance(url, str) else url).render_as_string(hide_password=True)


class ShopDatabase:
    """The store's tables behind one engine; thread-safe (a connection per call)."""

    def __init__(self, url: str) -> None:
        self.url = database_url(url)
        self.shown = shown_url(self.url)
        self.engine = _engine(self.url)
        # Reads need no transaction: on PostgreSQL that saves the BEGIN and ROLLBACK round
        # trips of every lookup.
        self._reads = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.dialect == "postgresql" else self.engine
        )

    @property
    def reads(self) -> Engine:
        """The engine for reads (autocommit on PostgreSQL: no transaction round trips)."""
        return self._reads

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------

    def migrate(self) -> str:
        """Upgrade the schema to the newest revision; returns it."""
        config = _alembic_config()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        return self.revision() or ""

    def revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def check_ready(self) -> None:
        """StoreNotReady, with the fix, unless the schema is at the newest revision."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        try:
            current = self.revision()
        except SQLAlchemyError as error:
            raise StoreNotReady(
                f"cannot open the store database {self.shown}: {refusal(error)}"
            ) from error
        if current != head:
            raise StoreNotReady(
                f"the store database {self.shown} has no schema yet (revision {current}, "
                f"newest {head}): run `concierge store import` (or `concierge store migrate`)"
            )

    # -- reads ----------------------------------------------------------------------------

    def version(self, name: str) -> int:
        with self._reads.connect() as connection:
            value = connection.scalar(select(versions.c.value).where(versions.c.name == name))
        return int(value or 0)

    def products(self) -> list[Product]:
        with self._reads.connect() as connection:
            rows = connection.execute(select(products).order_by(products.c.id)).mappings()
            return list(valid_rows(Product, (_product_fields(row) for row in rows)))

    def synonyms(self) -> list[Synonym]:
        with self._reads.connect() as connection:
            rows = connection.execute(select(synonyms).order_by(synonyms.c.phrase)).mappings()
            return list(valid_rows(Synonym, (dict(row) for row in rows)))

    def articles(self) -> list[Article]:
        with self._reads.connect() as connection:
            rows = connection.execute(select(articles).order_by(articles.c.id)).mappings()
            return list(valid_rows(Article, (dict(row) for row in rows)))

    def order(self, order_id: str) -> Order | None:
        wanted = normalize_order_id(order_id)
        if not wanted:
            return None
        keys = list(dict.fromkeys([wanted, wanted.upper()]))
        with self._reads.connect() as connection:
            row = connection.execute(select(orders).where(orders.c.id.in_(keys))).mappings().first()
        return _order(row) if row is not None else None

    def orders_of(self, customer_id: str) -> list[Order]:
        """The customer's orders, newest first."""
        query = (
            select(orders)
            .where(orders.c.customer_id == customer_id.strip())
            .order_by(orders.c.placed_at.desc(), orders.c.id.desc())
        )
        with self._reads.connect() as connection:
            found = [_order(row) for row in connection.execute(query).mappings()]
        return [order for order in found if order is not None]

    def customer(self, customer_id: str) -> Customer | None:
        query = select(customers).where(customers.c.id == customer_id.strip())
        with self._reads.connect() as connection:
            row = connection.execute(query).mappings().first()
        return next(valid_rows(Customer, [dict(row)]), None) if row is not None else None

    def purchase_events(self) -> Iterator[tuple[str, str, datetime]]:
        """(customer, product, when) of every ordered line not cancelled, then every imported
        or recorded interaction but those of `NOT_INTERESTED`, each group oldest first."""
        query = (
            select(orders.c.customer_id, orders.c["items"], orders.c.placed_at)
            .where(orders.c.status != "cancelled")
            .order_by(orders.c.placed_at, orders.c.id)
        )
        with self._reads.connect() as connection:
            for customer, items, placed in connection.execute(query):
                for line in items:
                    yield customer, str(line["item_id"]), aware_utc(placed)
            query = (
                select(interactions)
                .where(interactions.c.kind.not_in(NOT_INTERESTED))
                .order_by(interactions.c.at)
            )
            for row in connection.execute(query).mappings():
                yield row["customer_id"], row["item_id"], aware_utc(row["at"])

    def counts(self) -> dict[str, int]:
        tables = (products, customers, orders, articles, interactions, synonyms)
        with self._reads.connect() as connection:
            return {
                table.name: int(connection.scalar(select(func.count()).select_from(table)) or 0)
                for table in tables
            }

    # -- writes ---------------------------------------------------------------------------

    def record_interaction(self, interaction: Interaction) -> None:
        """One event (button feedback, say), kept for the next training."""
        with self.engine.begin() as connection:
            upsert(connection, interactions, [interaction.model_dump()])


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    changed: Iterable[str] | None = None,
    all_new: bool = False,
) -> None:
    """Insert `rows`; a row whose key exists gets the `changed` columns (default: all) and
    keeps its others. The values go to the driver as they are stored (JSON as text, times as
    UTC), skipping SQLAlchemy's per-row work; on PostgreSQL through COPY into a scratch table
    and one INSERT ... SELECT, so a batch is one statement (and one trigger). `all_new`: no
    row's key is in the table (the caller knows), so PostgreSQL copies them straight in."""
    if not rows:
        return
    columns = [column.name for column in table.columns]
    keys = [column.name for column in table.primary_key.columns]
    wanted = set(changed) if changed is not None else set(columns)
    updates = [name for name in columns if name not in keys and name in wanted]
    postgres = connection.dialect.name == "postgresql"
    convert = [
        (number, to) for number, column in enumerate(table.columns)
        if (to := _stored(column.type, postgres)) is not None
    ]
    pick = itemgetter(*columns)
    values: list[tuple[Any, ...]] = []
    for row in rows:
        value = list(pick(row))
        for number, to in convert:
            if value[number] is not None:
                value[number] = to(value[number])
        values.append(tuple(value))
    names = ", ".join(f'"{name}"' for name in columns)
    conflict = f"ON CONFLICT ({', '.join(keys)}) " + (
        "DO UPDATE SET " + ", ".join(f'"{name}" = excluded."{name}"' for name in updates)
        if updates else "DO NOTHING"
    )
    if not postgres:
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(
            f'INSERT INTO "{table.name}" ({names}) VALUES ({marks}) {conflict}', values
        )
        return
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    if all_new:
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for staged in values:
                copy.write_row(staged)
        return
    stage = f"import_{table.name}"
    cursor.execute(f'CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE "{table.name}") '
                   "ON COMMIT DROP")
    cursor.execute(f"TRUNCATE {stage}")
    with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
        for staged in values:
            copy.write_row(staged)
    cursor.execute(f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {stage} '
                   f"{conflict}")


def _stored(kind: Any, postgres: bool) -> Callable[[Any], Any] | None:
    """How a (not None) value of a column type is handed to the driver directly; None when
    the driver takes it as it is."""
    if isinstance(kind, JSON):
        return lambda value: to_json(value).decode()
    if isinstance(kind, DateTime):
        return as_utc if postgres else _sqlite_time
    if isinstance(kind, Date) and not postgres:
        return date.isoformat
    return None


def _sqlite_time(value: datetime) -> str:
    # UTC without a zone, as SQLAlchemy's SQLite dialect stores and parses it.
    if value.utcoffset():
        value = value.astimezone(UTC)
    return str(value.replace(tzinfo=None))


# -- rows <-> models ---------------------------------------------------------------------------

PRODUCT_COLUMNS = frozenset(column.name for column in products.columns) - {"extra"}


def product_row(product: Product) -> dict[str, Any]:
    row = product.model_dump(exclude=set(product.model_extra or ()))
    row["extra"] = dict(product.model_extra or {})
    return row


def _product_fields(row: Any) -> dict[str, Any]:
    fields = {name: row[name] for name in PRODUCT_COLUMNS}
    return {**row["extra"], **fields}


def _order(row: Any) -> Order | None:
    fields = dict(row)
    for name in ("placed_at", "shipped_at", "delivered_at"):
        if fields[name] is not None:
            fields[name] = aware_utc(fields[name])
    return next(valid_rows(Order, [fields]), None)


def valid_rows(model: type[Any], records: Iterable[dict[str, Any]]) -> Iterator[Any]:
    """Each record as `model`; a record the shop changed into something invalid is skipped
    with a warning rather than shown."""
    for record in records:
        try:
            yield model.model_validate(record)
        except ValidationError as error:
            key = record.get("id") or record.get("phrase")
            log_event(log, "store.invalid_record", level=logging.WARNING,
                      model=model.__name__, id=str(key), problems=error.error_count())


def as_utc(value: datetime) -> datetime:
    """The time in UTC (a time without a zone is taken as UTC already)."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def aware_utc(value: datetime) -> datetime:
    # SQLite keeps no zone; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def refusal(error: BaseException) -> str:
    """The driver's own first line, without the statement and parameters SQLAlchemy adds."""
    return str(getattr(error, "orig", None) or error).strip().splitlines()[0]


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _: Any) -> None:
        # WAL: readers in other processes never wait for an import to commit.
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA secure_delete=ON")  # deleted links and feedback are overwritten
        cursor.close()

    return engine
