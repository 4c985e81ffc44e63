"""Learning from feedback: the bandit's logged slates and its posterior.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("shown_at", TZ, nullable=False),
        sa.Column("policy", sa.String(64), nullable=False),
        sa.Column("candidates", sa.JSON, nullable=False),
        sa.Column("shown", sa.JSON, nullable=False),
        sa.Column("propensities", sa.JSON, nullable=False),
        sa.Column("closed_at", TZ),
        sa.Column("position", sa.Integer),
        sa.Column("kind", sa.String(16)),
    )
    op.create_index("ix_slates_shown_at", "slates", ["shown_at"])
    op.create_table(
        "bandit_state",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bandit_state")
    op.drop_index("ix_slates_shown_at", "slates")
    op.drop_table("slates")
