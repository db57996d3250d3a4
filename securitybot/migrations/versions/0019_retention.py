"""job_leases (the daily purge runs on one replica at a time); the audit log outlives alerts

Revision ID: 0019_retention
Revises: 0018_aer_reset_budget
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import securitybot.store.models

revision: str = "0019_retention"
down_revision: str | None = "0018_aer_reset_budget"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AT = securitybot.store.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "job_leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", _AT, nullable=True),
        sa.Column("done_at", _AT, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_leases")),
    )
    # retention.audit is longer than retention.alerts: an audit row about a purged alert stays,
    # with its alert id, so the foreign key has to go.
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint("fk_audit_log_alert_id_alerts", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_audit_log_alert_id_alerts", "alerts", ["alert_id"], ["id"]
        )
    op.drop_table("job_leases")
