"""pages, paged_alerts, pagerduty_webhooks: what was sent to the on-call's pager, and the
PagerDuty webhook events already handled

Revision ID: 0017_paging
Revises: 0016_aer_dead_letters
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from securitybot.store.models import UTCDateTime

revision: str = "0017_paging"
down_revision: str | None = "0016_aer_dead_letters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pages",
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),  # fmt: skip
        sa.Column("group_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("noted_through", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_pages_alert_id_alerts"),
        sa.PrimaryKeyConstraint("provider", "dedup_key", name="pk_pages"),
    )
    op.create_index("ix_pages_alert_id", "pages", ["alert_id"])
    op.create_index("ix_pages_status_created_at", "pages", ["status", "created_at"])
    op.create_table(
        "paged_alerts",
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),  # fmt: skip
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_paged_alerts_alert_id_alerts"
        ),
        sa.PrimaryKeyConstraint("alert_id", name="pk_paged_alerts"),
    )
    op.create_index("ix_paged_alerts_dedup_key", "paged_alerts", ["dedup_key"])
    op.create_table(
        "pagerduty_webhooks",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_pagerduty_webhooks"),
    )
    op.create_index("ix_pagerduty_webhooks_received_at", "pagerduty_webhooks", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_pagerduty_webhooks_received_at", table_name="pagerduty_webhooks")
    op.drop_table("pagerduty_webhooks")
    op.drop_index("ix_paged_alerts_dedup_key", table_name="paged_alerts")
    op.drop_table("paged_alerts")
    op.drop_index("ix_pages_status_created_at", table_name="pages")
    op.drop_index("ix_pages_alert_id", table_name="pages")
    op.drop_table("pages")
