"""dashboard_sessions.role, subject, email: an OIDC session's role and who the provider said it was

Revision ID: 0015_dashboard_roles
Revises: 0014_aer_stream
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_dashboard_roles"
down_revision: str | None = "0014_aer_stream"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("subject", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dashboard_sessions", schema=None) as batch_op:
        batch_op.drop_column("email")
        batch_op.drop_column("subject")
        batch_op.drop_column("role")
