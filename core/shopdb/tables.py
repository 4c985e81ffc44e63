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

# Platform users (`telegram:<id>`, `slack:<team>:<user>`) who proved they are a store customer:
# by a link token the shop issued ("link") or a code sent to the customer's e-mail ("email").
linked_identities = Table(
    "linked_identities",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("method", String(16), nullable=False),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index("linked_by_customer", "customer_id"),
)

# Link tokens issued to logged-in customers: single use (used_at), expiring. The token itself
# is the nonce plus a signature over nonce, customer and expiry; only the nonce is kept here.
link_tokens = Table(
    "link_tokens",
    metadata,
    Column("nonce", String(32), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
)

# The one pending e-mail code of a platform user (a keyed hash of it, never the code).
email_codes = Table(
    "email_codes",
    metadata,
    Column("user_id", String(200), primary_key=True),
    Column("customer_id", String(200), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False),
)

# Recent verification attempts per platform user: what the hourly limit counts.
verification_attempts = Table(
    "verification_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("attempts_by_user", "user_id", "at"),
)

# Generated secrets (the link signing key when CONCIERGE_LINK_SECRET is not set).
secrets = Table(
    "secrets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
)

# What was deleted on customers' requests, as counts only ("people", "conversations", ...).
privacy_counts = Table(
    "privacy_counts",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
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

# Support agents who sign in to the web desk: a password hash (argon2), never the password.
agents = Table(
    "agents",
    metadata,
    Column("login", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What the turns did, as counters per UTC day (`core.activity`): the dashboard's figures.
# `metric` names a count (turns, conversations, escalations) or a breakdown (intent, sentiment,
# decision, platform, shown and pressed by position, feedback by kind) whose value is `key`.
# No text and no customer or conversation id; a dashboard reads a few hundred rows whatever the
# traffic. `day` is text so every database groups by it the same way.
activity_counts = Table(
    "activity_counts",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("metric", String(16), primary_key=True),
    Column("key", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Learning from feedback (`workers.recommender.bandit`). Every slate the bandit showed, with
# the features of all its candidates and the propensity of each shown item at its position, and
# once the customer's next turn closes it, what was pressed: the logs off-policy evaluation
# reads. No customer, conversation or product id is kept, only numbers.
slates = Table(
    "slates",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("shown_at", DateTime(timezone=True), nullable=False, index=True),
    Column("policy", String(64), nullable=False),  # "bandit:<version>:<exploration>"
    Column("candidates", JSON, nullable=False),  # (C, d) feature rows
    Column("shown", JSON, nullable=False),  # candidate indices in display order
    Column("propensities", JSON, nullable=False),  # of each shown item at its position
    Column("closed_at", DateTime(timezone=True)),
    Column("position", Integer),  # the position pressed, None for none
    Column("kind", String(16)),  # details, more_like_this, not_for_me
)

# The bandit's posterior, one row per named policy, changed by locked read-modify-writes.
bandit_state = Table(
    "bandit_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("state", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

CATALOG = "catalog"
KNOWLEDGE = "knowledge"
WATCHED = {"products": CATALOG, "synonyms": CATALOG, "articles": KNOWLEDGE}
