"""AER events on NATS JetStream: which partition an org goes to, and the message format.

The HTTP endpoint publishes accepted events here and ``securitybot aer worker`` consumes them
(see :mod:`securitybot.aer.worker`). Pure apart from :class:`StreamPublisher`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import zlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from securitybot.aer.events import ActivityEvent
from securitybot.config import AerStream

# Events per message: keeps a message far below NATS's default 1 MB max_payload.
CHUNK_EVENTS = 500
_FIELDS = ("org", "user", "action", "session", "ip", "asn", "country", "user_agent", "client",
           "count", "details")  # fmt: skip


class StreamUnavailable(RuntimeError):
    """JetStream did not acknowledge every message: the request is not accepted."""


def partition(org: str, n: int) -> int:
    """A stable partition for ``org``: CRC-32 of its UTF-8, not Python's per-process salted hash."""
    return zlib.crc32(org.encode()) % n


def subject(cfg: AerStream, part: int) -> str:
    return f"{cfg.subject}.{part}"


def encode(events: Sequence[ActivityEvent]) -> bytes:
    rows = []
    for ev in events:
        row: dict[str, Any] = {"ts": ev.ts.isoformat()}
        for f in _FIELDS:
            value = getattr(ev, f)
            if value not in (None, {}):
                row[f] = value
        rows.append(row)
    return json.dumps(rows, separators=(",", ":")).encode()


def decode(data: bytes) -> list[ActivityEvent]:
    """Events as published: already validated by the endpoint, so only rebuilt here."""
    out = []
    for row in json.loads(data):
        ts = datetime.fromisoformat(row.pop("ts"))
        out.append(ActivityEvent(ts=ts, **row))
    return out


def messages(cfg: AerStream, events: Sequence[ActivityEvent]) -> Iterator[tuple[str, bytes, str]]:
    """(subject, payload, Nats-Msg-Id) per chunk of one partition's events, in input order.

    The message id is a digest of subject and payload: when a client retries a batch that got
    a 503 half-way, JetStream's duplicate window drops the chunks already stored.
    """
    by_part: dict[int, list[ActivityEvent]] = {}
    for ev in events:
        by_part.setdefault(partition(ev.org, cfg.partitions), []).append(ev)
    for part, evs in sorted(by_part.items()):
        subj = subject(cfg, part)
        for i in range(0, len(evs), CHUNK_EVENTS):
            payload = encode(evs[i : i + CHUNK_EVENTS])
            digest = hashlib.sha256(subj.encode() + b"\n" + payload).hexdigest()
            yield subj, payload, digest


async def ensure_stream(js: Any, cfg: AerStream) -> None:
    """Create the stream when missing (file storage: acknowledged events survive a restart)."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(cfg.stream)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=cfg.stream, subjects=[f"{cfg.subject}.*"], storage=api.StorageType.FILE,
                duplicate_window=cfg.duplicate_window,
            )
        )  # fmt: skip


class StreamPublisher:
    """Publishes accepted events; returns only once JetStream acknowledged every message."""

    def __init__(self, cfg: AerStream) -> None:
        self.cfg = cfg
        self._nc: Any = None
        self._js: Any = None
        self._ready = False
        self._lock = asyncio.Lock()

    async def _connect(self) -> Any:
        import nats

        async with self._lock:
            if self._nc is None or self._nc.is_closed:
                self._nc = await nats.connect(
                    self.cfg.url, connect_timeout=self.cfg.publish_timeout,
                    max_reconnect_attempts=-1, allow_reconnect=True,
                )  # fmt: skip
                self._js = self._nc.jetstream(timeout=self.cfg.publish_timeout)
                self._ready = False
            if not self._ready:
                await ensure_stream(self._js, self.cfg)
                self._ready = True
        return self._js

    async def publish(self, events: Sequence[ActivityEvent]) -> int:
        """Publish ``events``; the number of messages. Raises StreamUnavailable."""
        if not events:
            return 0
        try:
            js = await asyncio.wait_for(self._connect(), self.cfg.publish_timeout)
            futures = [
                await js.publish_async(
                    subj,
                    payload,
                    stream=self.cfg.stream,
                    headers={"Nats-Msg-Id": msg_id},
                    wait_stall=self.cfg.publish_timeout,
                )
                for subj, payload, msg_id in messages(self.cfg, events)
            ]
            await asyncio.wait_for(asyncio.gather(*futures), self.cfg.publish_timeout)
        except Exception as exc:  # connection refused, timeout, JetStream API error
            reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
            raise StreamUnavailable(f"JetStream did not acknowledge the events ({reason})") from exc
        return len(futures)

    async def close(self) -> None:
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
