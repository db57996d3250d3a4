"""Refuse a signed ingest request seen before: one use per HMAC signature, on every replica.

The HMAC scheme (``ingest.signing``, v2) signs the timestamp, method, path, query and body and
refuses timestamps outside ``ingest.replay_window``, but inside the window a captured request
could be sent again and, without a ``dedup_key``, made a second alert. A digest of each
accepted signature goes into ``seen_signatures`` (primary key, ``INSERT ... ON CONFLICT DO
NOTHING RETURNING``, the pattern of ``slack.receipts``); a second insert of the same digest
finds the row and the request is refused. The table is shared, so this holds across replicas
and restarts.

The signature is used up when it is authenticated, in its own short transaction, not in the
transaction that stores the alert: one mechanism covers every endpoint that accepts HMAC. A
request that then fails (a 4xx for its content, or a 500) has still used its signature; the
client signs again with a fresh timestamp, as it must for any retry after the window anyway.

The key names the method, path and query as well (v1 signatures covered only the timestamp
and body, so two bodiless requests signed in the same second shared one). Reads are guarded
too: a signature is valid for exactly one request. A client that sends the same request twice
within one second tells them apart with a nonce (``X-Securitybot-Nonce``).

A timestamp may be up to one window in the *future*, so a signature stays usable until two
windows after it was first seen; rows are kept that long and then pruned.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, delete

from securitybot.store.db import Database
from securitybot.store.models import SeenSignature, utcnow
from securitybot.store.once import Every, insert_once

PRUNE_EVERY = 300.0  # seconds between prunes, per process

SEEN = cast(Table, SeenSignature.__table__)


def digest(source: str, target: str, signature: str) -> str:
    return hashlib.sha256(f"{source}\n{target}\n{signature}".encode()).hexdigest()


class ReplayGuard:
    def __init__(self, db: Database, window: float) -> None:
        self.db = db
        self.keep = timedelta(seconds=2 * window)
        self._prune = Every(PRUNE_EVERY)

    def first_use(self, source: str, target: str, signature: str) -> bool:
        """Record the signature for ``target`` (method and path); True if no request has used
        it there before. Blocking (database)."""
        values = {"signature_digest": digest(source, target, signature), "source": source,
                  "seen_at": utcnow()}  # fmt: skip
        with self.db.write() as session:
            first = insert_once(session, SEEN, values)
        if self._prune.due():
            self.prune()
        return first

    def prune(self) -> int:
        """Delete signatures too old to be accepted again; returns how many went."""
        with self.db.write() as session:
            result = session.execute(
                delete(SeenSignature).where(SeenSignature.seen_at < utcnow() - self.keep)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
