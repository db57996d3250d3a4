"""Every name we keep for one person: the email, the Slack user id(s) the people cache and the
alerts resolved it to, and the names Slack gave (real and display name). A hold or an erasure
by email must also catch the rows keyed by Slack id (AER, snoozes, the audit log's actors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from securitybot.store.models import Alert
from securitybot.store.slack_people_models import SlackPerson

# Profile fields of Slack's users.info that name the person (api.slack.com/types/user).
_PROFILE_NAMES = ("real_name", "display_name", "real_name_normalized", "display_name_normalized",
                  "first_name", "last_name", "email")  # fmt: skip


@dataclass
class Identities:
    """``keys``: exact values that name the person in id-like columns (email, Slack ids).
    ``texts``: strings to scrub out of free text and JSON (keys plus names, 3+ characters)."""

    email: str
    keys: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)

    def add_user(self, user: dict[str, Any] | None) -> None:
        if not isinstance(user, dict):
            return
        if isinstance(user.get("id"), str):
            self.keys.add(user["id"])
        # The gateway's cached SlackUser, or Slack's own user object with its profile.
        for name in ("name", "real_name", "first_name"):
            if isinstance(user.get(name), str):
                self.texts.add(user[name])
        if isinstance(user.get("email"), str):
            self.keys.add(user["email"].lower())
        profile = user.get("profile")
        if isinstance(profile, dict):
            for name in _PROFILE_NAMES:
                if isinstance(profile.get(name), str):
                    self.texts.add(profile[name])


def resolve(session: Session, email: str) -> Identities:
    email = email.strip().lower()
    ids = Identities(email=email, keys={email})
    ids.add_user(session.scalar(select(SlackPerson.user).where(SlackPerson.key == email)))
    for user_id, user_name in session.execute(
        select(Alert.user_id, Alert.user_name)
        .where(Alert.user_given == email).distinct()
    ):  # fmt: skip
        if user_id:
            ids.keys.add(user_id)
        if user_name:
            ids.texts.add(user_name)
    # The cache rows keyed by those ids, and every other cache row naming the same person.
    for user, channel in session.execute(
        select(SlackPerson.user, SlackPerson.dm_channel).where(
            SlackPerson.key.in_(sorted(ids.keys))
        )
    ):
        ids.add_user(user)
        if channel:  # the person's DM channel with the bot names them as well as their id
            ids.keys.add(channel)
    for channel in session.scalars(
        select(Alert.dm_channel).where(Alert.user_given == email).distinct()
    ):
        if channel:
            ids.keys.add(channel)
    ids.texts |= ids.keys
    ids.texts = {t.strip() for t in ids.texts if len(t.strip()) >= 3}
    return ids


def held_people_ids(session: Session, people: list[str]) -> frozenset[str]:
    """The Slack ids of the held emails (as the people cache and alerts know them)."""
    found: set[str] = set()
    for person in people:
        if "@" in person:
            found |= resolve(session, person).keys
    return frozenset(found)
