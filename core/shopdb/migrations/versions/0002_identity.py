"""Customers' identities and data rights: platform users linked to store customers, the link
tokens and e-mail codes that prove it, recent verification attempts (rate limits), the signing
secret when none is configured, and anonymised counts of what was deleted on request.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "linked_identities",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("linked_at", TZ, nullable=False),
    )
    op.create_index("linked_by_customer", "linked_identities", ["customer_id"])
    op.create_table(
        "link_tokens",
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ),
    )
    op.create_table(
        "email_codes",
        sa.Column("user_id", sa.String(200), primary_key=True),
        sa.Column("customer_id", sa.String(200), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
    )
    op.create_table(
        "verification_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("attempts_by_user", "verification_attempts", ["user_id", "at"])
    op.create_table(
        "secrets",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )
    op.create_table(
        "privacy_counts",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    # "Send me a code at DANA@example.com" finds the record in one index lookup.
    op.create_index("customers_by_email", "customers", [sa.text("lower(email)")])


def downgrade() -> None:
    op.drop_index("customers_by_email", "customers")
    for table in ("privacy_counts", "secrets", "verification_attempts", "email_codes",
                  "link_tokens", "linked_identities"):
        op.drop_table(table)
