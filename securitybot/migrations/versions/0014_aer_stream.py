"""aer_partitions and aer_workers: JetStream partition leases, committed positions, workers

Revision ID: 0014_aer_stream
Revises: 0013_slack_people
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0014_aer_stream"
down_revision: str | None = "0013_slack_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aer_partitions",
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_until", securitybot.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "partition", name=op.f("pk_aer_partitions")),
    )
    op.create_table(
        "aer_workers",
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("seen_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("stream", "worker", name=op.f("pk_aer_workers")),
    )


def downgrade() -> None:
    op.drop_table("aer_workers")
    op.drop_table("aer_partitions")
