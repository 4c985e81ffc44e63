"""`concierge store import`: a shop's files into the store database, in one transaction.

Files are CSV or JSON lines with the field names of the shop's pydantic models (those of the
demo store's files), so the demo and any store written in that shape import unchanged. Rows
are upserted by id. A bad row (invalid JSON, a field that does not validate, a repeated id, an
order naming a customer or product the store does not have) is reported with its file, line
and reason and skipped; the good rows are imported. A failure of the import itself (a file
that cannot be read, the database refusing a write) rolls everything back.
"""

from __future__ import annotations

import csv
import json
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Table, select
from sqlalchemy.exc import SQLAlchemyError

from core.shop.catalog import Product
from core.shop.customers import Customer
from core.shop.interactions import Interaction
from core.shop.jsonl import problems
from core.shop.knowledge import Article
from core.shop.orders import Order
from core.shop.synonyms import Synonym
from core.shopdb.database import (
    ShopDatabase,
    product_row,
    refusal,
    upsert,
)
from core.shopdb.tables import articles, customers, interactions, orders, products, synonyms

BATCH = 2000  # rows per INSERT ... ON CONFLICT batch


@dataclass(frozen=True)
class ImportKind:
    """One kind of import file: its model, its table and how a record becomes a row."""

    name: str
    model: type[BaseModel]
    table: Table
    row: Callable[[Any], dict[str, Any]]
    key: Callable[[Any], str]


def _dump(record: BaseModel) -> dict[str, Any]:
    return record.model_dump()


# In import order: an order's customer and products are imported before the order.
KINDS: dict[str, ImportKind] = {
    kind.name: kind
    for kind in (
        ImportKind("catalog", Product, products, product_row, lambda r: r.id),
        ImportKind("customers", Customer, customers, _dump, lambda r: r.id),
        ImportKind("orders", Order, orders, _dump, lambda r: r.id),
        ImportKind("articles", Article, articles, _dump, lambda r: r.id),
        ImportKind(
            "interactions", Interaction, interactions, _dump,
            lambda r: f"{r.customer_id}\0{r.item_id}\0{r.kind}\0{r.at.isoformat()}",
        ),
        ImportKind("synonyms", Synonym, synonyms, _dump, lambda r: r.phrase.lower()),
    )
}


class ImportFailed(Exception):
    """The import stopped; the database is as it was before it."""


@dataclass(frozen=True)
class BadRow:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    imported: dict[str, int] = field(default_factory=dict)  # kind -> rows upserted
    bad: list[BadRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(self.imported.values()) + len(self.bad)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def import_store(
    database: ShopDatabase, files: Mapping[str, Path], batch: int = BATCH
) -> ImportReport:
    """Import `files` (kind -> path, any subset of `KINDS`) in one transaction."""
    unknown = sorted(set(files) - set(KINDS))
    if unknown:
        raise ImportFailed(f"unknown file kind {', '.join(unknown)}: one of {', '.join(KINDS)}")
    for path in files.values():
        if not path.is_file():
            raise ImportFailed(f"{path}: file not found")
        _format(path)
    try:
        database.migrate()
    except SQLAlchemyError as error:
        raise ImportFailed(f"cannot open the store database {database.shown}: "
                           f"{refusal(error)}") from error
    report = ImportReport()
    started = time.perf_counter()
    try:
        with database.engine.begin() as connection:
            known = _Known(connection)
            for kind in (KINDS[name] for name in KINDS if name in files):
                report.imported[kind.name] = _import_file(
                    connection, kind, files[kind.name], known, report.bad, batch
                )
    except SQLAlchemyError as error:
        raise ImportFailed(
            f"the database refused the import, nothing was imported: {refusal(error)}"
        ) from error
    report.seconds = time.perf_counter() - started
    return report


class _Known:
    """Ids the store has, for the checks of orders and interactions."""

    def __init__(self, connection: Connection) -> None:
        self.products = set(connection.scalars(select(products.c.id)))
        self.customers = set(connection.scalars(select(customers.c.id)))
        # Tables empty when the import began: every row of theirs is new (a file's repeated
        # ids are refused), which a first import of a store writes fastest.
        self.empty = {
            kind.name for kind in KINDS.values()
            if connection.scalar(select(kind.table).limit(1)) is None
        }

    def problem(self, record: BaseModel) -> str | None:
        if isinstance(record, Order):
            if record.customer_id not in self.customers:
                return f"unknown customer {record.customer_id}"
            missing = [item.item_id for item in record.items if item.item_id not in self.products]
            if missing:
                return f"unknown product {', '.join(missing)}"
        if isinstance(record, Interaction) and record.item_id not in self.products:
            return f"unknown product {record.item_id}"
        return None

    def add(self, record: BaseModel) -> None:
        if isinstance(record, Product):
            self.products.add(record.id)
        elif isinstance(record, Customer):
            self.customers.add(record.id)


def _import_file(
    connection: Connection,
    kind: ImportKind,
    path: Path,
    known: _Known,
    bad: list[BadRow],
    batch: int,
) -> int:
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    columns: frozenset[str] = frozenset()
    imported = 0
    for line, record in read_records(path, kind.model):
        if isinstance(record, str):
            bad.append(BadRow(path, line, record))
            continue
        key = kind.key(record)
        problem = known.problem(record) or (
            f"repeats {kind.name} {key} of an earlier line" if key in seen else None
        )
        if problem is not None:
            bad.append(BadRow(path, line, problem))
            continue
        seen.add(key)
        known.add(record)
        given = given_columns(record)
        # One statement updates the same columns in every row: a row that gives other
        # columns than the batch so far starts a new batch.
        if given != columns or len(rows) >= batch:
            upsert(connection, kind.table, rows, columns, kind.name in known.empty)
            imported += len(rows)
            rows, columns = [], given
        rows.append(kind.row(record))
    upsert(connection, kind.table, rows, columns, kind.name in known.empty)
    return imported + len(rows)


def given_columns(record: BaseModel) -> frozenset[str]:
    """The columns a row of the file sets: an existing record keeps the others as stored
    (a file of ids, prices and stock levels changes only those)."""
    given = set(record.model_fields_set)
    if record.model_extra:
        given.add("extra")  # unknown columns replace the product's kept ones
    return frozenset(given)


def read_records(path: Path, model: type[BaseModel]) -> Iterator[tuple[int, BaseModel | str]]:
    """(line number, validated record) per row of a CSV or JSON-lines file; a row that is not
    one comes as (line, reason). ImportFailed when the file itself cannot be read."""
    name = model.__name__
    try:
        if _format(path) == "jsonl":
            # pydantic parses and validates each line in one step (JSON is read in Rust).
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        yield number, model.model_validate_json(line)
                    except ValidationError as error:
                        yield number, _reason(error, name)
            return
        for number, raw in _read_csv(path, model):
            if isinstance(raw, str):
                yield number, raw
                continue
            try:
                yield number, model.model_validate(raw)
            except ValidationError as error:
                yield number, _reason(error, name)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ImportFailed(f"{path}: cannot read the file, nothing was imported: {error}") \
            from error


def _reason(error: ValidationError, name: str) -> str:
    first = error.errors()[0]
    if first["type"] == "json_invalid":
        return f"invalid JSON: {first['ctx'].get('error', first['msg'])}"
    if first["type"] == "model_type":
        return "a line must hold one JSON object"
    return f"invalid {name}: {problems(error)}"


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ImportFailed(f"{path}: unknown format {suffix or '(no suffix)'}: use .csv or .jsonl")


def _read_csv(path: Path, model: type[BaseModel]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    lists = {name for name, info in model.model_fields.items()
             if typing.get_origin(info.annotation) is tuple}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle)
        for row in rows:
            number = rows.line_num
            try:
                yield number, {
                    name: _cell(value, name in lists)
                    for name, value in row.items()
                    if name and value not in (None, "")
                }
            except json.JSONDecodeError as error:
                yield number, f"invalid JSON in a cell: {error.msg}"


def _cell(value: str, is_list: bool) -> Any:
    """A CSV cell: JSON when it starts like a JSON array or object (an order's `items`);
    "a|b|c" for a list field."""
    text = value.strip()
    if text and text[0] in "[{":
        return json.loads(text)
    if is_list:
        return [part.strip() for part in text.split("|") if part.strip()]
    return value
