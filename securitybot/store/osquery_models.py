"""osquery nodes enrolled through the TLS API: which source a node key stands for.

Only the SHA-256 of a node key is stored, so a copy of the table cannot be replayed as keys. A
fast hash is enough here: keys are 256 random bits (nothing to guess), and the digest is also
what a log request is looked up by.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from securitybot.store.base import Base, UTCDateTime, utcnow


class OsqueryNode(Base):
    __tablename__ = "osquery_nodes"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The ingest source whose token was the enroll secret: the node's logs are that source's.
    source: Mapped[str] = mapped_column(String(64), index=True)
    host_identifier: Mapped[str] = mapped_column(String(255), default="")
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
