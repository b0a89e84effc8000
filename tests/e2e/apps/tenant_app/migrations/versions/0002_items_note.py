"""items.note, in each tenant's schema.

Revision ID: t0002
"""

import sqlalchemy as sa
from alembic import op

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("items", sa.Column("note", sa.String(200), nullable=True))


def downgrade():
    op.drop_column("items", "note")
