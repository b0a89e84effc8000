"""audit_log: a Log table.

Revision ID: m0002
"""

import sqlalchemy as sa
from alembic import op
from clickhouse_sqlalchemy import engines, types

revision = "m0002"
down_revision = "m0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_log",
        sa.Column("message", types.String(), primary_key=True),
        engines.Log(),
    )


def downgrade():
    op.drop_table("audit_log")
