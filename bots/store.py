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
from collections.abc import Sequence
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
    database = _database(settings)
    try:
        revision = database.migrate()
    finally:
        database.close()
    print(f"store {database.shown}: schema at revision {revision}")
    return 0


def _database(settings: Settings) -> ShopDatabase:
    from core.shopdb.database import ShopDatabase

    return ShopDatabase(settings.store_url.get_secret_value())
