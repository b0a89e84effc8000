"""basic: a MergeTree table and a Log table.

Revision ID: ch_basic_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from clickhouse_sqlalchemy import engines, types

revision: str = "ch_basic_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("basic",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "test_records",
        sa.Column("id", types.UInt64(), primary_key=True),
        sa.Column("name", types.String()),
        sa.Column("created_at", types.DateTime()),
        engines.MergeTree(order_by=("id",)),
    )
    op.create_table(
        "test_log",
        sa.Column("message", types.String(), primary_key=True),
        sa.Column("logged_at", types.DateTime()),
        engines.Log(),
    )


def downgrade() -> None:
    op.drop_table("test_log")
    op.drop_table("test_records")
