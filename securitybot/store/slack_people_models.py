"""The durable cache of Slack people: who an email address is, and their DM channel id.

Neither changes often, and finding them costs two Slack calls per DM (users.lookupByEmail,
conversations.open). Kept in the database, the cache survives restarts and serves every
replica; the gateway drops an entry when Slack says it no longer holds (user_not_found,
channel_not_found).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, UTCDateTime


class SlackPerson(Base):
    """One row per way of naming a person: a lower-case email address or a Slack user id.

    ``user`` is Slack's profile as the gateway uses it (looked up at ``user_cached_at``);
    ``dm_channel`` (rows keyed by user id) is the IM channel conversations.open returned;
    ``locale`` (rows keyed by user id) is the language the security team chose for them
    (``/securitybot locale``), which wins over Slack's and the config's.
    """

    __tablename__ = "slack_people"

    key: Mapped[str] = mapped_column(String(254), primary_key=True)
    user: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    user_cached_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dm_channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(35), nullable=True)
