"""Where workspaces installed through Slack's OAuth flow are kept: slack_sdk's own SQLAlchemy
installation store (``slack_installations``, ``slack_bots``) and OAuth state store
(``slack_oauth_states``), on our database.

The tables are slack_sdk's (its ``build_*_table``), so the stores read and write them as they
always do; our migration 0023 creates them, and ``METADATA`` lets the models-versus-migrations
check (tests/store/test_migrations.py) and alembic's autogenerate see them beside ours. The
stores are synchronous: callers on the event loop use them through ``asyncio.to_thread``.
"""

from __future__ import annotations

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, MetaData, func, select

INSTALLATIONS = SQLAlchemyInstallationStore.default_installations_table_name
BOTS = SQLAlchemyInstallationStore.default_bots_table_name
STATES = SQLAlchemyOAuthStateStore.default_table_name

METADATA = MetaData()
SQLAlchemyInstallationStore.build_installations_table(METADATA, INSTALLATIONS)
SQLAlchemyInstallationStore.build_bots_table(METADATA, BOTS)
SQLAlchemyOAuthStateStore.build_oauth_states_table(METADATA, STATES)

# A state is good for this long between "Add to Slack" and Slack's redirect back.
STATE_EXPIRES = 600


def installation_store(client_id: str, engine: Engine) -> SQLAlchemyInstallationStore:
    return SQLAlchemyInstallationStore(client_id=client_id, engine=engine)


def state_store(engine: Engine) -> SQLAlchemyOAuthStateStore:
    return SQLAlchemyOAuthStateStore(expiration_seconds=STATE_EXPIRES, engine=engine)


def installed_teams(store: SQLAlchemyInstallationStore) -> list[tuple[str | None, str]]:
    """(enterprise id, team id) of every workspace with a bot installed for this app, in the
    order they were first installed (slack_sdk's store has no "list" of its own)."""
    bots = store.bots
    query = (
        select(bots.c.enterprise_id, bots.c.team_id)
        .where(bots.c.client_id == store.client_id, bots.c.team_id.is_not(None))
        .group_by(bots.c.enterprise_id, bots.c.team_id)
        .order_by(func.min(bots.c.id))
    )
    with store.engine.connect() as conn:
        return [(row.enterprise_id, str(row.team_id)) for row in conn.execute(query)]
