"""Enrolling osquery nodes and recognising their node keys."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy.orm import Session

from securitybot.store.models import utcnow
from securitybot.store.osquery_models import OsqueryNode

MAX_HOST_IDENTIFIER = 255


def key_digest(node_key: str) -> str:
    return hashlib.sha256(node_key.encode()).hexdigest()


def enroll(session: Session, source: str, host_identifier: str) -> str:
    """A new node key for a host of ``source``; only its digest is kept."""
    node_key = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        OsqueryNode(
            key_hash=key_digest(node_key),
            source=source,
            host_identifier=host_identifier[:MAX_HOST_IDENTIFIER],
            enrolled_at=now,
            last_seen_at=now,
        )
    )
    return node_key


def recognise(session: Session, node_key: str) -> OsqueryNode | None:
    """The node this key was given to (its last-seen time moved on), or None."""
    node = session.get(OsqueryNode, key_digest(node_key))
    if node is not None:
        node.last_seen_at = utcnow()
    return node
