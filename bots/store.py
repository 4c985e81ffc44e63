"""`concierge store ...`: the store database from the command line.

    concierge store import --demo                       # the demo store shipped with Concierge
    concierge store import --catalog products.csv --orders orders.jsonl
    concierge store schema [catalog|customers|orders|articles|interactions|synonyms]
    concierge store stats
    concierge store migrate

The database is the one `CONCIERGE_STORE_URL` names (default: the SQLite file
var/store.sqlite3), for these commands and every other.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core.infra.commands import CommandHelp
from core.infra.logs import configure
from core.infra.settings import Settings

if TYPE_CHECKING:
    from core.shopdb.database import ShopDatabase

# How many bad rows are printed one per line; the rest are counted.
SHOWN_BAD_ROWS = 20
# The demo store's files, by import kind (its interactions.csv is derived from its orders).
DEMO_FILES = {
    "catalog": "catalog.jsonl",
    "customers": "customers.jsonl",
    "orders": "orders.jsonl",
    "articles": "faq.jsonl",
    "synonyms": "synonyms.jsonl",
}


def import_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Exit 0: every row imported; 1: the good rows imported, bad ones listed; 2: nothing
    imported (the files or the database failed)."""
    from core.shopdb.importer import KINDS, ImportFailed, import_store

    parser = argparse.ArgumentParser(
        prog="concierge store import", formatter_class=CommandHelp,
        description="Import a shop's files into the store database (CONCIERGE_STORE_URL) in one\n"
                    "transaction, upserting by id. CSV or JSON lines, with the fields of\n"
                    "`concierge store schema`. Bad rows are listed with file, line and reason\n"
                    "and skipped; if the import itself fails, nothing is imported.")
    parser.add_argument("--demo", action="store_true",
                        help="the demo store shipped with Concierge (CONCIERGE_DEMO_DIR)")
    for kind in KINDS:
        parser.add_argument(f"--{kind}", type=Path, metavar="FILE",
                            help=f"{kind} file (.csv or .jsonl)")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    files = {kind: getattr(args, kind) for kind in KINDS if getattr(args, kind) is not None}
    if args.demo:
        demo = {kind: settings.demo_dir / name for kind, name in DEMO_FILES.items()}
        files = {kind: path for kind, path in demo.items() if path.exists()} | files
    if not files:
        parser.error("name at least one file (--catalog F, --orders F, ...) or --demo")
    database = _database(settings)
    try:
        report = import_store(database, files)
    except ImportFailed as error:
        print(f"concierge store import: {error}", file=sys.stderr)
        return 2
    finally:
        database.close()
    for kind, count in report.imported.items():
        print(f"{kind:<13} {count:>9,} rows from {files[kind]}")
    for bad in report.bad[:SHOWN_BAD_ROWS]:
        print(f"bad row: {bad}", file=sys.stderr)
    if len(report.bad) > SHOWN_BAD_ROWS:
        print(f"... and {len(report.bad) - SHOWN_BAD_ROWS:,} more bad rows", file=sys.stderr)
    print(json.dumps({
        "store": database.shown,
        "imported": report.imported,
        "bad_rows": len(report.bad),
        "seconds": round(report.seconds, 2),
        "rows_per_s": round(report.rows_per_s),
    }))
    return 1 if report.bad else 0


def schema_main(argv: Sequence[str] | None = None) -> int:
    """The JSON Schema of each import file's rows, from the models the import validates with."""
    from core.shopdb.importer import KINDS

    parser = argparse.ArgumentParser(
        prog="concierge store schema", formatter_class=CommandHelp,
        description="Print the JSON Schema of the rows of each import file (or of one kind).")
    parser.add_argument("kind", nargs="?", choices=list(KINDS), help="one file kind")
    args = parser.parse_args(argv)
    kinds = [args.kind] if args.kind else list(KINDS)
    schemas = {kind: KINDS[kind].model.model_json_schema() for kind in kinds}
    print(json.dumps(schemas[args.kind] if args.kind else schemas, indent=2))
    return 0


def stats_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Rows per table of the store database, its schema revision and change counters."""
    from core.shopdb.tables import CATALOG, KNOWLEDGE

    argparse.ArgumentParser(
        prog="concierge store stats", formatter_class=CommandHelp,
        description="Count the rows of each table of the store database (CONCIERGE_STORE_URL).",
    ).parse_args(argv)
    settings = settings or Settings()
    database = _database(settings)
    try:
        database.check_ready()
        counts = database.counts()
        versions = {name: database.version(name) for name in (CATALOG, KNOWLEDGE)}
    finally:
        database.close()
    print(f"store {database.shown} (schema {database.revision() or 'none'})")
    for table, count in counts.items():
        print(f"  {table:<13} {count:>10,}")
    print(json.dumps({"store": database.shown, "counts": counts, "versions": versions}))
    return 0


def migrate_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Create or upgrade the store database's schema (the import does this too)."""
    argparse.ArgumentParser(
        prog="concierge store migrate", formatter_class=CommandHelp,
        description="Bring the store database (CONCIERGE_STORE_URL) to the newest schema.",
    ).parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level, settings.log_format)
    from sqlalchemy.exc import SQLAlchemyError

    from core.shopdb.database import refusal

    database = _database(settings)
    try:
        revision = database.migrate()
    except SQLAlchemyError as error:
        print(f"concierge store migrate: cannot open the store database {database.shown}: "
              f"{refusal(error)}", file=sys.stderr)
        return 2
    finally:
        database.close()
    print(f"store {database.shown}: schema at revision {revision}")
    return 0


def beauty_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """Write the Amazon Beauty store's import files (a second, real store to try Concierge on)."""
    import time

    from core.shop.beauty import convert_beauty

    parser = argparse.ArgumentParser(
        prog="concierge store beauty", formatter_class=CommandHelp,
        description="Turn the public Amazon Beauty data set (CONCIERGE_DATA_DIR/amazon_beauty)\n"
                    "into a store's import files: 12,101 real products, 22,363 customers and\n"
                    "their purchases as orders with simulated dates and statuses. Then:\n"
                    "  concierge store import --catalog DIR/catalog.jsonl --customers \\\n"
                    "    DIR/customers.jsonl --orders DIR/orders.jsonl --articles FAQ")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="folder for catalog.jsonl, customers.jsonl and orders.jsonl")
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="the data set (default: CONCIERGE_DATA_DIR/amazon_beauty)")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same files")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    source = args.source or settings.data_dir / "amazon_beauty"
    if not source.is_dir():
        print(f"concierge store beauty: no data set at {source} (set CONCIERGE_DATA_DIR or "
              "--source)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    files = convert_beauty(source, args.out, args.seed)
    print(json.dumps({
        "out": str(args.out), "products": files.product_count,
        "estimated_prices": files.estimated_price_count, "customers": files.customer_count,
        "orders": files.order_count, "order_lines": files.line_count,
        "seconds": round(time.perf_counter() - started, 2),
    }))
    return 0


def bench_main(argv: Sequence[str] | None = None, settings: Settings | None = None) -> int:
    """`concierge bench store`: the Amazon Beauty store into SQLite and PostgreSQL, then order
    lookups at its size and at a million orders, and suggestions over its 12k products."""
    import tempfile

    from core.shop.beauty import convert_beauty

    parser = argparse.ArgumentParser(
        prog="concierge bench store", formatter_class=CommandHelp,
        description="Import the Amazon Beauty store (converted from CONCIERGE_DATA_DIR) into\n"
                    "SQLite and PostgreSQL and time it; then order lookups p50/p99 at the\n"
                    "store's size and at --orders orders (generated), and the p50 of a\n"
                    "suggestion (catalog filter, retrieval and ranking) over its catalog.")
    parser.add_argument("--orders", type=int, default=1_000_000,
                        help="orders in the store for the second round of lookups")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL server to create a scratch database on ('none': "
                             "SQLite only)")
    parser.add_argument("--requests", type=int, default=200, help="timed suggestion requests")
    parser.add_argument("--source", type=Path, metavar="DIR",
                        help="the data set (default: CONCIERGE_DATA_DIR/amazon_beauty)")
    args = parser.parse_args(argv)
    settings = settings or Settings()
    configure(settings.log_level if "log_level" in settings.model_fields_set else "WARNING",
              settings.log_format)
    source = args.source or settings.data_dir / "amazon_beauty"
    if not source.is_dir():
        print(f"concierge bench store: no data set at {source}", file=sys.stderr)
        return 2
    result: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = convert_beauty(source, folder / "files")
        store_files = {"catalog": files.catalog, "customers": files.customers,
                       "orders": files.orders, "articles": settings.demo_dir / "faq.jsonl"}
        sqlite_url = f"sqlite:///{folder / 'store.sqlite3'}"
        result["sqlite"] = _bench_backend(sqlite_url, store_files, args.orders)
        if args.postgres != "none":
            with _scratch_postgres(args.postgres) as postgres_url:
                result["postgresql"] = _bench_backend(postgres_url, store_files, args.orders)
        result["suggestion"] = _bench_suggestions(settings, sqlite_url, args.requests)
    print(json.dumps(result))
    return 0


def _bench_backend(url: str, files: dict[str, Path], total_orders: int) -> dict[str, object]:
    from core.shopdb.bench import generate_orders, lookup_figures
    from core.shopdb.database import ShopDatabase
    from core.shopdb.importer import import_store

    database = ShopDatabase(url)
    try:
        report = import_store(database, files)
        figures: dict[str, object] = {
            "import_rows": report.rows, "import_s": round(report.seconds, 2),
            "import_rows_per_s": round(report.rows_per_s),
            "at_store_size": lookup_figures(database),
        }
        print(f"{database.dialect}: imported {report.rows:,} rows in {report.seconds:.1f} s "
              f"({report.rows_per_s:,.0f} rows/s)", flush=True)
        added, seconds = generate_orders(database, total_orders)
        figures["generated_orders"] = added
        figures["generated_s"] = round(seconds, 1)
        figures["at_total_orders"] = lookup_figures(database)
        print(f"{database.dialect}: {figures['at_store_size']} -> {figures['at_total_orders']}",
              flush=True)
        return figures
    finally:
        database.close()


def _bench_suggestions(settings: Settings, url: str, requests: int) -> dict[str, object]:
    import itertools
    import time

    from pydantic import SecretStr

    from bots.wiring import build_recommender
    from core.infra.percentiles import percentile
    from core.shopdb.bench import timed_ms
    from core.turn.recommendation import RecommendationRequest

    store = settings.model_copy(update={"store_url": SecretStr(url)})
    started = time.perf_counter()
    recommender = build_recommender(store)
    startup_s = time.perf_counter() - started
    asks = [
        RecommendationRequest(user_id="bench", text="a fragrance for women", category="fragrance",
                              budget_max=40.0),
        RecommendationRequest(user_id="bench", text="conditioner for dry hair",
                              category="hair care"),
        RecommendationRequest(user_id="bench", text="long lasting red lipstick",
                              budget_max=25.0),
        RecommendationRequest(user_id="bench", text="a gentle face cleanser"),
    ]
    cycle = itertools.cycle(asks)
    times = timed_ms(lambda: recommender.recommend(next(cycle)), requests)
    return {"requests": requests, "p50_ms": round(percentile(times, 50), 2),
            "p99_ms": round(percentile(times, 99), 2), "startup_s": round(startup_s, 1)}


@contextmanager
def _scratch_postgres(admin_url: str) -> Iterator[str]:
    """A new database on the server `admin_url` names, dropped afterwards."""
    import uuid

    import psycopg
    from sqlalchemy.engine import make_url

    name = f"concierge_bench_{uuid.uuid4().hex[:8]}"
    admin = make_url(admin_url)
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _database(settings: Settings) -> ShopDatabase:
    from core.shopdb.database import ShopDatabase

    return ShopDatabase(settings.store_url.get_secret_value())
