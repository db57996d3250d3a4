"""aer_dead_letters: JetStream messages a worker could not act on, with the reason

Revision ID: 0016_aer_dead_letters
Revises: 0015_dashboard_roles
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0016_aer_dead_letters"
down_revision: str | None = "0015_dashboard_roles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aer_dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
                  nullable=False),  # fmt: skip
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("msg_id", sa.String(length=255), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "replayed_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("replayed_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aer_dead_letters")),
        sa.UniqueConstraint("stream", "seq", name="uq_aer_dead_letters_stream_seq"),
    )
    op.create_index("ix_aer_dead_letters_reason", "aer_dead_letters", ["reason"])


def downgrade() -> None:
    op.drop_index("ix_aer_dead_letters_reason", table_name="aer_dead_letters")
    op.drop_table("aer_dead_letters")
