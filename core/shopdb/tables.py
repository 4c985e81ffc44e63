"""The store database's tables (SQLAlchemy Core), one per import file, plus the version counters.

Every field of the shop's pydantic models is a column, so a shop can change a price, a stock
level or an order status with plain SQL and Concierge reads it as written. Lists (colours,
sizes, attributes, keywords, an order's lines) and a product's unknown columns (`extra`) are
JSON. The schema itself is created and changed only by the Alembic migrations in
`core/shopdb/migrations/`; these definitions are what the code reads and writes.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

products = Table(
    "products",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("title", Text, nullable=False),
    Column("price", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("brand", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("subcategory", Text, nullable=False),
    Column("colors", JSON, nullable=False),
    Column("sizes", JSON, nullable=False),
    Column("description", Text, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("rating", Float),
    Column("review_count", Integer, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("materials", Text, nullable=False),
    Column("warranty_months", Integer, nullable=False),
    Column("extra", JSON, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("city", Text, nullable=False),
    Column("joined", Date, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("items", JSON, nullable=False),
    Column("total", Float, nullable=False),
    Column("status", String(32), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("shipped_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("estimated_delivery", Date),
    Column("carrier", Text, nullable=False),
    Column("tracking_number", Text),
    Column("shipping_address_city", Text, nullable=False),
    Column("shipping_method", String(32), nullable=False),
    Index("orders_by_customer", "customer_id", "placed_at"),
)

articles = Table(
    "articles",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("topic", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("keywords", JSON, nullable=False),
)

# What customers did with products besides ordering them: imported events and button feedback.
# An event is its own key, so importing the same file twice adds nothing.
interactions = Table(
    "interactions",
    metadata,
    Column("customer_id", String(200), primary_key=True),
    Column("item_id", String(200), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("at", DateTime(timezone=True), primary_key=True),
)

# The shop's own words for its categories and attributes ("rain jacket" -> outerwear, waterproof).
synonyms = Table(
    "synonyms",
    metadata,
    Column("phrase", String(200), primary_key=True),
    Column("category", Text),
    Column("attributes", JSON, nullable=False),
)

# Counters that database triggers raise on every change to what processes hold in memory:
# "catalog" (products, synonyms) and "knowledge" (articles). A process re-reads only when one
# moved, so a change made by an import, an admin tool or plain SQL is served within seconds.
versions = Table(
    "versions",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

CATALOG = "catalog"
KNOWLEDGE = "knowledge"
WATCHED = {"products": CATALOG, "synonyms": CATALOG, "articles": KNOWLEDGE}
