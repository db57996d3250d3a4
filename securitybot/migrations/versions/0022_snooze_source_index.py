"""snoozes.source_alert_id indexed: a purge batch unlinks its alerts' snoozes (issue 31)

Revision ID: 0022_snooze_source_index
Revises: 0021_locale
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022_snooze_source_index"
down_revision: str | None = "0021_locale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_snoozes_source_alert_id", "snoozes", ["source_alert_id"])


def downgrade() -> None:
    op.drop_index("ix_snoozes_source_alert_id", table_name="snoozes")
