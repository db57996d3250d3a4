"""suppression_rules, and alerts.suppression_id naming the rule that closed an alert

Revision ID: 0012_suppressions
Revises: 0011_osquery_nodes
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0012_suppressions"
down_revision: str | None = "0011_osquery_nodes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = securitybot.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "suppression_rules",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("matchers", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _UTC(timezone=True), nullable=False),
        sa.Column("expires_at", _UTC(timezone=True), nullable=False),
        sa.Column("revoked_at", _UTC(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppression_rules")),
    )
    with op.batch_alter_table("suppression_rules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_suppression_rules_kind_expires_at", ["kind", "expires_at"], unique=False
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "suppression_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_suppression_id_suppression_rules"),
            "suppression_rules",
            ["suppression_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_alerts_suppression_id_suppression_rules"), type_="foreignkey"
        )
        batch_op.drop_column("suppression_id")
    with op.batch_alter_table("suppression_rules", schema=None) as batch_op:
        batch_op.drop_index("ix_suppression_rules_kind_expires_at")
    op.drop_table("suppression_rules")
