"""basic: the test_users table of the quick start.

Revision ID: basic_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "basic_0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = ("basic",)
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "test_users",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_test_users"),
        sa.UniqueConstraint("email", name="uq_test_users_email"),
    )


def downgrade() -> None:
    op.drop_table("test_users")
