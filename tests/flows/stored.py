"""Alerts written straight to the store, for flow tests that start mid-conversation."""

from __future__ import annotations

from typing import Any

from securitybot.store.db import Database
from securitybot.store.models import Alert


def stored_alert(db: Database, *, status: str, **values: Any) -> int:
    """Alice's `flurb -export` alert in ``status``, with any other columns given; its id."""
    with db.write() as session:
        alice = {"kind": "sensitive_command", "severity": "high", "source": "test",
                 "user_given": "alice@example.com", "user_id": "UALICE",
                 "title": "flurb -export"}  # fmt: skip
        alert = Alert(**{**alice, **values}, status=status)
        session.add(alert)
        session.flush()
        return alert.id
