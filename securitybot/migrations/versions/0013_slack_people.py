"""slack_people: a durable cache of Slack users by email and of their DM channel ids

Revision ID: 0013_slack_people
Revises: 0012_suppressions
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0013_slack_people"
down_revision: str | None = "0012_suppressions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_people",
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("user", sa.JSON(), nullable=True),
        sa.Column(
            "user_cached_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("dm_channel", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_people")),
    )


def downgrade() -> None:
    op.drop_table("slack_people")
