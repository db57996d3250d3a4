"""slack_people.locale: the language the security team chose for a person (issue 33)

Revision ID: 0021_locale
Revises: 0020_storms
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_locale"
down_revision: str | None = "0020_storms"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("slack_people") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=35), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("slack_people") as batch:
        batch.drop_column("locale")
