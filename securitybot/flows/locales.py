"""Which language a person is spoken to in (docs/i18n.md "Whose language"), most specific first:

1. the security team's choice (``/securitybot locale @user de``, kept in ``slack_people``);
2. config ``i18n.locales`` (by Slack user id or email address);
3. Slack's own locale for them (``users.info`` with ``include_locale``, cached with the person);
4. config ``i18n.default_locale``; then English.

Each step counts only if a shipped catalog serves it (``pt-PT`` is served by ``pt_BR``;
``it-IT`` is not, so the next step decides). Finding the language never fails a message: a
Slack error while asking for the locale falls through to the default.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from securitybot.config.i18n import I18nConfig
from securitybot.i18n import Translator, negotiate, translator
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.store import slack_people
from securitybot.store.db import Database

logger = logging.getLogger(__name__)


@dataclass
class Locales:
    config: I18nConfig
    db: Database | None = None
    slack: SlackGateway | None = None

    def _chosen(self, user_id: str) -> str | None:
        assert self.db is not None
        with self.db.read() as session:
            return slack_people.locale(session, user_id)

    async def locale_for(self, user_id: str | None, email: str | None = None) -> str:
        """The negotiated language (``de``, ``pt_BR``, ``en``) for a Slack user id."""
        chosen = await asyncio.to_thread(self._chosen, user_id) if self.db and user_id else None
        configured = self.config.locales.get(user_id or "")
        from_slack = None
        if chosen is None and self.slack is not None and user_id:
            try:
                if configured is None and email is None and self.config.locales:
                    found = await self.slack.lookup_user(user_id)
                    email = found.email if found else None
                if email and configured is None:
                    configured = self.config.locales.get(email.lower())
                if configured is None and self.config.use_slack_locale:
                    from_slack = await self.slack.locale_of(user_id)
            except (SlackRetryLater, SlackPermanentError) as exc:
                logger.info("no Slack locale for %s (%s): the default language", user_id, exc)
        elif email and configured is None:
            configured = self.config.locales.get(email.lower())
        return negotiate(chosen, configured, from_slack, self.config.default_locale)

    async def for_user(self, user_id: str | None, email: str | None = None) -> Translator:
        return translator(await self.locale_for(user_id, email))
