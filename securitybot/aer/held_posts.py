"""The held-resets escalation: one post per batch, then updates in place
(:mod:`securitybot.slack.versioned_post`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from securitybot.aer.budget import HELD_POST_EFFECT, HELD_UPDATE_EFFECT, held_users
from securitybot.aer.held_message import held_message
from securitybot.i18n import translator
from securitybot.slack.versioned_post import VersionedPost
from securitybot.store.aer_budget_models import AerHeldBatch


class HeldPosts(VersionedPost):
    model = AerHeldBatch
    id_key, post_key = "batch_id", ("aer_held_batch", "aer_held")
    post_effect, update_effect = HELD_POST_EFFECT, HELD_UPDATE_EFFECT
    what = "held resets"
    unlisted = "held resets in (the API and the dashboard still list them)"

    def people(self, session: Session, row_id: int) -> list[str]:
        return held_users(session, row_id)

    def message(
        self, row: Any, people: list[str], mention: str | None
    ) -> tuple[str, list[dict[str, Any]]]:
        return held_message(row, people, mention, translator(self.settings.i18n.team_locale))
