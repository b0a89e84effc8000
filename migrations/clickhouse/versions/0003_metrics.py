"""metrics: metric name, value, tags, timestamp; and an hourly view over them.

Revision ID: ch_metrics_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from clickhouse_sqlalchemy import engines, types

revision: str = "ch_metrics_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("metrics",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("metric_name", types.String(), primary_key=True),
        sa.Column("value", types.Float64()),
        sa.Column("tags", types.Array(types.String())),
        sa.Column("timestamp", types.DateTime()),
        engines.MergeTree(
            partition_by=sa.text("toYYYYMM(timestamp)"),
            order_by=("metric_name", "timestamp"),
        ),
    )
    op.execute(
        "CREATE VIEW metrics_hourly AS SELECT metric_name, toStartOfHour(timestamp) AS hour, "
        "avg(value) AS average, count() AS samples FROM metrics GROUP BY metric_name, hour"
    )


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS metrics_hourly")
    op.drop_table("metrics")
