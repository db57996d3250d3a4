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
import time
from dataclasses import dataclass, field

from securitybot.config.i18n import I18nConfig
from securitybot.i18n import Translator, negotiate, translator
from securitybot.slack.gateway import SlackGateway, SlackPermanentError, SlackRetryLater
from securitybot.store import slack_people
from securitybot.store.db import Database

logger = logging.getLogger(__name__)


# How long the team's choice for a person is kept in memory. Every message to a person asks
# for it (the push lines, the DM, each update): read from the database each time, those reads
# were a fifth of the database work of 1,000 people approving pushes together (bench/duo.py).
# The replica that takes the /securitybot locale command forgets it at once; another replica
# speaks the new language within this long.
CHOSEN_TTL = 10.0


@dataclass
class Locales:
    config: I18nConfig
    db: Database | None = None
    slack: SlackGateway | None = None
    _chosen_at: dict[str, tuple[float, str | None]] = field(
        default_factory=dict, init=False, repr=False
    )

    def _read(self, user_ids: list[str]) -> None:
        """The team's choices for ``user_ids``, read in one query and remembered."""
        assert self.db is not None
        with self.db.read() as session:
            found = slack_people.locales(session, user_ids)
        if len(self._chosen_at) > 100_000:  # a bound, not an eviction policy
            self._chosen_at.clear()
        now = time.monotonic()
        for user_id, chosen in found.items():
            self._chosen_at[user_id] = (now, chosen)

    async def prefetch(self, user_ids: list[str]) -> None:
        """Read the team's choices for everyone about to get a message in one query: a batch
        of DMs to 100 people read them one by one, a third of a DM burst's database time on
        PostgreSQL (bench/latency.py at full drain)."""
        if self.db is None:
            return
        now = time.monotonic()
        stale = sorted({u for u in user_ids if u and not self._fresh(u, now)})
        if stale:
            await asyncio.to_thread(self._read, stale)

    def _fresh(self, user_id: str, now: float) -> bool:
        hit = self._chosen_at.get(user_id)
        return hit is not None and now - hit[0] < CHOSEN_TTL

    def forget(self, user_id: str) -> None:
        """The team chose another language for ``user_id``: read it again next time."""
        self._chosen_at.pop(user_id, None)

    async def locale_for(self, user_id: str | None, email: str | None = None) -> str:
        """The negotiated language (``de``, ``pt_BR``, ``en``) for a Slack user id."""
        chosen = None
        if self.db is not None and user_id:
            if not self._fresh(user_id, time.monotonic()):  # a remembered one needs no thread
                await asyncio.to_thread(self._read, [user_id])
            chosen = self._chosen_at[user_id][1]
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
