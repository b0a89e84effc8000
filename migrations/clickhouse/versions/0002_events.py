"""events: event tracking, partitioned by month.

Revision ID: ch_events_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from clickhouse_sqlalchemy import engines, types

revision: str = "ch_events_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("events",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("event_id", types.UUID(), primary_key=True),
        sa.Column("user_id", types.UInt64()),
        sa.Column("event_type", types.String()),
        sa.Column("properties", types.String()),
        sa.Column("timestamp", types.DateTime()),
        engines.MergeTree(
            partition_by=sa.text("toYYYYMM(timestamp)"),
            order_by=("event_type", "user_id", "timestamp"),
        ),
    )


def downgrade() -> None:
    op.drop_table("events")
