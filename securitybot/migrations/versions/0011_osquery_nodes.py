"""osquery_nodes: node keys handed out by the osquery TLS enroll endpoint (stored hashed)

Revision ID: 0011_osquery_nodes
Revises: 0010_14a_aer_state
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0011_osquery_nodes"
down_revision: str | None = "0010_14a_aer_state"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "osquery_nodes",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("host_identifier", sa.String(length=255), nullable=False),
        sa.Column(
            "enrolled_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_at", securitybot.store.models.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("key_hash", name=op.f("pk_osquery_nodes")),
    )
    with op.batch_alter_table("osquery_nodes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_osquery_nodes_source"), ["source"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("osquery_nodes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_osquery_nodes_source"))
    op.drop_table("osquery_nodes")
