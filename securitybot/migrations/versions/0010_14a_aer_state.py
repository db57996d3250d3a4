"""aer_versions, aer_threat_lists, aer_sessions: AER state shared by every process

Revision ID: 0010_14a_aer_state
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0010_14a_aer_state"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = securitybot.store.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "aer_versions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_aer_versions")),
    )
    op.create_table(
        "aer_threat_lists",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("fetched_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_aer_threat_lists")),
    )
    op.create_table(
        "aer_sessions",
        sa.Column("org", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=256), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("updated_at", _UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org", "session_id", name=op.f("pk_aer_sessions")),
    )
    with op.batch_alter_table("aer_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_aer_sessions_updated_at"), ["updated_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("aer_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_aer_sessions_updated_at"))
    op.drop_table("aer_sessions")
    op.drop_table("aer_threat_lists")
    op.drop_table("aer_versions")
