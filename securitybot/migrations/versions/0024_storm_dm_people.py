"""storm_dms: one row per (detection, person), their last DM (the guard counts rows, and reads
only a batch's own people, instead of every DM of the window under the detection's lock)

Revision ID: 0024_storm_dm_people
Revises: 0023_slack_installations
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024_storm_dm_people"
down_revision: str | None = "0023_slack_installations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Each person's latest DM per detection stays (the window is measured from it).
    op.execute(
        "DELETE FROM storm_dms WHERE id NOT IN "
        "(SELECT max(id) FROM storm_dms GROUP BY key, user_id)"
    )
    # Not unique: the previous release's code writes a row per DM until it is restarted.
    op.create_index("ix_storm_dms_key_user", "storm_dms", ["key", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_storm_dms_key_user", table_name="storm_dms")
