"""readings: a MergeTree table.

Revision ID: m0001
"""

import sqlalchemy as sa
from alembic import op
from clickhouse_sqlalchemy import engines, types

revision = "m0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "readings",
        sa.Column("id", types.UInt64(), primary_key=True),
        sa.Column("sensor", types.String()),
        sa.Column("value", types.Float64()),
        engines.MergeTree(order_by=("sensor", "id")),
    )


def downgrade():
    op.drop_table("readings")
