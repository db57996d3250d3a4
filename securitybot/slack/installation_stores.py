"""slack_sdk's SQLAlchemy installation and OAuth state stores (store/slack_installations.py) are
synchronous; these give them the asynchronous face Bolt's conventions expect
(``AsyncInstallationStore``: Bolt's token revocation listeners delete through it on
``app_uninstalled`` and ``tokens_revoked``), each call in a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

from securitybot.store import slack_installations


class AsyncStore(AsyncInstallationStore):
    """slack_sdk's synchronous SQLAlchemy store, asynchronously (a thread per call).
    ``changed(team_id)`` is told of every save and delete, so cached clients follow."""

    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store
        self.changed: list[Callable[[str | None], None]] = []

    def _tell(self, team_id: str | None) -> None:
        for listener in self.changed:
            listener(team_id)

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)
        self._tell(installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)
        self._tell(bot.team_id)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:  # fmt: skip
        return await asyncio.to_thread(
            self.store.find_bot, enterprise_id=enterprise_id, team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )  # fmt: skip

    async def async_find_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:  # fmt: skip
        return await asyncio.to_thread(
            self.store.find_installation, enterprise_id=enterprise_id, team_id=team_id,
            user_id=user_id, is_enterprise_install=is_enterprise_install,
        )  # fmt: skip

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.store.delete_bot, enterprise_id=enterprise_id,
                                team_id=team_id)  # fmt: skip
        self._tell(team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(self.store.delete_installation, enterprise_id=enterprise_id,
                                team_id=team_id, user_id=user_id)  # fmt: skip
        self._tell(team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    def teams(self) -> list[tuple[str | None, str]]:
        return slack_installations.installed_teams(self.store)


class AsyncStateStore(AsyncOAuthStateStore):
    """slack_sdk's synchronous SQLAlchemy OAuth state store, a thread per call."""

    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.store.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)
