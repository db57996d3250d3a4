"""aer_reset_budgets, aer_reset_grants, aer_held_batches, aer_held_resets: the reset budget

Revision ID: 0018_aer_reset_budget
Revises: 0017_paging
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0018_aer_reset_budget"
down_revision: str | None = "0017_paging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = securitybot.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "aer_reset_budgets",
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("org", name=op.f("pk_aer_reset_budgets")),
    )
    op.create_table(
        "aer_reset_grants",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("anomaly_id", sa.BigInteger(), nullable=False),
        sa.Column("granted_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aer_reset_grants")),
    )
    op.create_index("ix_aer_reset_grants_org_at", "aer_reset_grants", ["org", "granted_at"])
    op.create_table(
        "aer_held_batches",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resets", sa.Integer(), nullable=False),
        sa.Column("anomalies", sa.Integer(), nullable=False),
        sa.Column("budget_count", sa.Integer(), nullable=False),
        sa.Column("budget_per", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shown_version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", _AT, nullable=True),
        sa.Column("opened_at", _AT, nullable=False),
        sa.Column("last_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aer_held_batches")),
    )
    op.create_index("ix_aer_held_batches_org_status", "aer_held_batches", ["org", "status"])
    op.create_table(
        "aer_held_resets",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("anomaly_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aer_held_resets")),
        sa.UniqueConstraint("batch_id", "user_id", name=op.f("uq_aer_held_resets_batch_id")),
    )


def downgrade() -> None:
    op.drop_table("aer_held_resets")
    op.drop_index("ix_aer_held_batches_org_status", table_name="aer_held_batches")
    op.drop_table("aer_held_batches")
    op.drop_index("ix_aer_reset_grants_org_at", table_name="aer_reset_grants")
    op.drop_table("aer_reset_grants")
    op.drop_table("aer_reset_budgets")
