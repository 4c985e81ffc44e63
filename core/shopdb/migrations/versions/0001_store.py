"""The store: products, customers, orders, articles, interactions, synonyms and the counters
that tell processes their in-memory catalog or articles are out of date.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
# Table -> the counter its changes raise.
WATCHED = {"products": "catalog", "synonyms": "catalog", "articles": "knowledge"}


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("brand", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("subcategory", sa.Text, nullable=False),
        sa.Column("colors", sa.JSON, nullable=False),
        sa.Column("sizes", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("rating", sa.Float),
        sa.Column("review_count", sa.Integer, nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
        sa.Column("materials", sa.Text, nullable=False),
        sa.Column("warranty_months", sa.Integer, nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("city", sa.Text, nullable=False),
        sa.Column("joined", sa.Date, nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("placed_at", TZ, nullable=False),
        sa.Column("shipped_at", TZ),
        sa.Column("delivered_at", TZ),
        sa.Column("estimated_delivery", sa.Date),
        sa.Column("carrier", sa.Text, nullable=False),
        sa.Column("tracking_number", sa.Text),
        sa.Column("shipping_address_city", sa.Text, nullable=False),
        sa.Column("shipping_method", sa.String(32), nullable=False),
    )
    op.create_index("orders_by_customer", "orders", ["customer_id", "placed_at"])
    op.create_table(
        "articles",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
    )
    op.create_table(
        "interactions",
        sa.Column("customer_id", sa.String(200), primary_key=True),
        sa.Column("item_id", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("at", TZ, primary_key=True),
    )
    op.create_table(
        "synonyms",
        sa.Column("phrase", sa.String(200), primary_key=True),
        sa.Column("category", sa.Text),
        sa.Column("attributes", sa.JSON, nullable=False),
    )
    versions = op.create_table(
        "versions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(versions, [{"name": "catalog", "value": 0}, {"name": "knowledge", "value": 0}])
    dialect = op.get_bind().dialect.name
    for table, counter in WATCHED.items():
        if dialect == "postgresql":
            _postgres_trigger(table, counter)
        else:
            _sqlite_triggers(table, counter)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        for counter in set(WATCHED.values()):
            op.execute(f"DROP FUNCTION IF EXISTS raise_{counter}_version()")
    for table in ("versions", "synonyms", "interactions", "articles", "orders", "customers",
                  "products"):
        op.drop_table(table)


def _sqlite_triggers(table: str, counter: str) -> None:
    # SQLite has row triggers only: one counter update per changed row (about a microsecond).
    for action in ("INSERT", "UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_{action.lower()} AFTER {action} ON {table} BEGIN "
            f"UPDATE versions SET value = value + 1 WHERE name = '{counter}'; END"
        )


def _postgres_trigger(table: str, counter: str) -> None:
    # One statement trigger: a bulk import raises the counter once per statement, not per row.
    op.execute(
        f"CREATE OR REPLACE FUNCTION raise_{counter}_version() RETURNS trigger AS $$ BEGIN "
        f"UPDATE versions SET value = value + 1 WHERE name = '{counter}'; RETURN NULL; "
        f"END $$ LANGUAGE plpgsql"
    )
    op.execute(
        f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION raise_{counter}_version()"
    )
