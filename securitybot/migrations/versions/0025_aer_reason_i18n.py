"""aer_notifications.last_reason_i18n: the latest reason as a message template and its values,
shown in the team's language (NULL on rows written before: their English is shown)

Revision ID: 0025_aer_reason_i18n
Revises: 0024_storm_dm_people
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025_aer_reason_i18n"
down_revision: str | None = "0024_storm_dm_people"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default, no backfill: the previous release's code keeps writing rows without
    # it until it is restarted, and those rows show their English reason.
    with op.batch_alter_table("aer_notifications") as batch:
        batch.add_column(sa.Column("last_reason_i18n", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("aer_notifications") as batch:
        batch.drop_column("last_reason_i18n")
