"""slack_receipts: Slack deliveries already handled (event_id, action_ts)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_receipts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("received_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_slack_receipts")),
    )
    with op.batch_alter_table("slack_receipts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_slack_receipts_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("slack_receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_receipts_received_at"))
    op.drop_table("slack_receipts")
