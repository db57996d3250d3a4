"""A storm's message: one post per storm, then updates in place
(:mod:`securitybot.slack.versioned_post`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from securitybot.i18n import translator
from securitybot.slack.versioned_post import VersionedPost
from securitybot.store.storm_models import Storm
from securitybot.storms.guard import POST_EFFECT, UPDATE_EFFECT, held_users
from securitybot.storms.message import storm_message


class StormPosts(VersionedPost):
    model = Storm
    id_key, post_key = "storm_id", ("storm", "storm")
    post_effect, update_effect = POST_EFFECT, UPDATE_EFFECT
    what = "storm"
    unlisted = "the storm in (the API, the dashboard and App Home still list it)"

    def people(self, session: Session, row_id: int) -> list[str]:
        return held_users(session, row_id)

    def message(
        self, row: Any, people: list[str], mention: str | None
    ) -> tuple[str, list[dict[str, Any]]]:
        return storm_message(row, people, mention, translator(self.settings.i18n.team_locale))
