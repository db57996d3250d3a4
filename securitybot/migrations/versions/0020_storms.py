"""storm_keys, storm_dms, storms, storm_alerts: the storm guard (issue 27)

Revision ID: 0020_storms
Revises: 0019_retention
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0020_storms"
down_revision: str | None = "0019_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = securitybot.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "storm_keys",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_storm_keys")),
    )
    op.create_table(
        "storm_dms",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storm_dms")),
    )
    op.create_index("ix_storm_dms_key_at", "storm_dms", ["key", "at"])
    op.create_table(
        "storms",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("max_people", sa.Integer(), nullable=False),
        sa.Column("window", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("shown_version", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("escalated_alert_id", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", _AT, nullable=True),
        sa.Column("opened_at", _AT, nullable=False),
        sa.Column("last_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storms")),
    )
    op.create_index("ix_storms_key_status", "storms", ["key", "status"])
    op.create_table(
        "storm_alerts",
        sa.Column("alert_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("storm_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_storm_alerts")),
    )
    op.create_index("ix_storm_alerts_storm_id", "storm_alerts", ["storm_id"])


def downgrade() -> None:
    op.drop_index("ix_storm_alerts_storm_id", table_name="storm_alerts")
    op.drop_table("storm_alerts")
    op.drop_index("ix_storms_key_status", table_name="storms")
    op.drop_table("storms")
    op.drop_index("ix_storm_dms_key_at", table_name="storm_dms")
    op.drop_table("storm_dms")
    op.drop_table("storm_keys")
