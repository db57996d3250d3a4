"""AER events on NATS JetStream: which partition an org goes to, the message format, and the
publisher.

The HTTP endpoint publishes accepted events here, each message signed (:mod:`.mac`), and
``securitybot aer worker`` consumes them (see :mod:`securitybot.aer.worker`). Pure apart from
:class:`StreamPublisher` and :func:`ensure_stream`; connection options (credentials, TLS) are
in :mod:`.natsconn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from securitybot.aer.events import ActivityEvent
from securitybot.aer.mac import MAC_HEADER, sign, signing_keys
from securitybot.aer.natsconn import connect
from securitybot.config import AerStream

# Events per message: keeps a message far below NATS's default 1 MB max_payload.
CHUNK_EVENTS = 500
MSG_ID_HEADER = "Nats-Msg-Id"
EXPECTED_STREAM_HEADER = "Nats-Expected-Stream"
_FIELDS = ("org", "user", "action", "session", "ip", "asn", "country", "user_agent", "client",
           "count", "details")  # fmt: skip


class StreamUnavailable(RuntimeError):
    """JetStream did not acknowledge every message: the request is not accepted.

    ``stored`` are the positions (in the published sequence) of events JetStream did
    acknowledge; every other event was not stored, or (an acknowledgement lost in transit) is
    dropped as a duplicate when the same events are published again within the window.
    """

    def __init__(self, message: str, stored: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.stored = sorted(stored)


class Message(NamedTuple):
    subject: str
    payload: bytes
    msg_id: str
    positions: tuple[int, ...]  # of its events in the published sequence


def partition(org: str, n: int) -> int:
    """A stable partition for ``org``: CRC-32 of its UTF-8, not Python's per-process salted hash."""
    return zlib.crc32(org.encode()) % n


def subject(cfg: AerStream, part: int) -> str:
    return f"{cfg.subject}.{part}"


def encode(events: Sequence[ActivityEvent]) -> bytes:
    rows = []
    for ev in events:
        row: dict[str, Any] = {"ts": ev.ts.isoformat(), "org": ev.org, "user": ev.user,
                               "action": ev.action}  # fmt: skip
        if ev.session is not None:
            row["session"] = ev.session
        if ev.ip is not None:
            row["ip"] = ev.ip
        if ev.asn is not None:
            row["asn"] = ev.asn
        if ev.country is not None:
            row["country"] = ev.country
        if ev.user_agent is not None:
            row["user_agent"] = ev.user_agent
        if ev.client is not None:
            row["client"] = ev.client
        if ev.count != 1:
            row["count"] = ev.count
        if ev.details:
            row["details"] = ev.details
        rows.append(row)
    return json.dumps(rows, separators=(",", ":")).encode()


class Undecodable(ValueError):
    """Not a message the API writes: not JSON, or not a list of event objects."""


class Invalid(ValueError):
    """JSON of the right shape whose events do not hold what the API would have accepted."""


_TYPES: dict[str, type] = {
    "org": str, "user": str, "action": str, "session": str, "ip": str, "asn": int,
    "country": str, "user_agent": str, "client": str, "count": int, "details": dict,
}  # fmt: skip
_REQUIRED = frozenset({"ts", "org", "user", "action"})


def decode(data: bytes) -> list[ActivityEvent]:
    """Events as published. The API validated them; a worker still refuses (``Undecodable``,
    ``Invalid``) anything that would fail later in detection, so one bad message cannot stop
    its partition."""
    try:
        rows = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Undecodable(f"not JSON: {exc}"[:200]) from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise Undecodable("not a JSON array of event objects")
    out = []
    for i, row in enumerate(rows):
        missing = _REQUIRED - row.keys()
        if missing:
            raise Invalid(f"event {i}: {', '.join(sorted(missing))} missing")
        for key, value in row.items():
            want = _TYPES.get(key)
            if key == "ts":
                continue
            if want is None:
                raise Invalid(f"event {i}: unknown field {key[:40]!r}")
            if not isinstance(value, want) or isinstance(value, bool):
                raise Invalid(f"event {i}: {key} must be of type {want.__name__}")
        try:
            ts = datetime.fromisoformat(row.pop("ts"))
        except (TypeError, ValueError):
            raise Invalid(f"event {i}: ts is not an ISO 8601 time") from None
        if ts.tzinfo is None:
            raise Invalid(f"event {i}: ts has no time zone")
        out.append(ActivityEvent(ts=ts, **row))
    return out


def messages(cfg: AerStream, events: Sequence[ActivityEvent], salt: str = "") -> Iterator[Message]:
    """One message per chunk of one partition's events, in input order.

    The message id is a digest of subject and payload (and ``salt``): when a client retries a
    batch that got a 503 half-way, JetStream's duplicate window drops the chunks already
    stored. A replayed dead letter is salted, so it is not mistaken for its original.
    """
    by_part: dict[int, list[int]] = {}
    n = cfg.partitions
    for pos, ev in enumerate(events):
        by_part.setdefault(partition(ev.org, n), []).append(pos)
    for part, positions in sorted(by_part.items()):
        subj = subject(cfg, part)
        for i in range(0, len(positions), CHUNK_EVENTS):
            chunk = tuple(positions[i : i + CHUNK_EVENTS])
            payload = encode([events[p] for p in chunk])
            digest = hashlib.sha256(f"{salt}{subj}\n".encode() + payload).hexdigest()
            yield Message(subj, payload, digest, chunk)


async def ensure_stream(js: Any, cfg: AerStream) -> None:
    """Create the stream when missing (file storage: acknowledged events survive a restart);
    bring an existing stream's duplicate window to ``duplicate_window``, nothing else."""
    from nats.js import api
    from nats.js.errors import NotFoundError

    try:
        info = await js.stream_info(cfg.stream)
    except NotFoundError:
        await js.add_stream(
            api.StreamConfig(
                name=cfg.stream, subjects=[f"{cfg.subject}.*"], storage=api.StorageType.FILE,
                duplicate_window=cfg.duplicate_window,
            )
        )  # fmt: skip
        return
    if abs((info.config.duplicate_window or 0) - cfg.duplicate_window) > 0.001:
        info.config.duplicate_window = cfg.duplicate_window
        await js.update_stream(info.config)


class AckError(RuntimeError):
    """JetStream answered a publish with an error (stream full, wrong stream, no stream...)."""


@dataclass
class _Conn:
    """A connection and the inbox its acknowledgements come back on."""

    nc: Any
    prefix: str
    waiting: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    sent: int = 0

    async def on_ack(self, msg: Any) -> None:
        fut = self.waiting.pop(msg.subject[len(self.prefix) :], None)
        if fut is None or fut.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":  # NATS: no responders
            fut.set_exception(AckError("no stream listens on the subject"))
            return
        try:
            resp = json.loads(msg.data)
        except ValueError:
            fut.set_exception(AckError("JetStream's acknowledgement is not JSON"))
            return
        err = resp.get("error") if isinstance(resp, dict) else {"description": "not an object"}
        if err:
            fut.set_exception(AckError(
                f"{err.get('description')} (code {err.get('code')}, err_code "
                f"{err.get('err_code')})"
            ))  # fmt: skip
        else:
            fut.set_result(resp)


class StreamPublisher:
    """Publishes accepted events as one pipelined batch: every message is sent with its own
    reply subject, then one wait covers all the acknowledgements. Returns once JetStream
    acknowledged every message, else raises :class:`StreamUnavailable` naming what was stored.

    The acknowledgements are read here rather than through nats-py's ``publish_async``, whose
    futures are never resolved when JetStream answers with an error such as "maximum messages
    exceeded" (nats-io/nats.py#985): a refused message would look like a timeout.

    The connection has no reconnect buffer and does not reconnect by itself: a message handed
    to it while NATS is away fails at once instead of being sent after we answered 503. After
    any failure the connection is dropped with whatever it still holds, and the next request
    connects afresh.
    """

    def __init__(self, cfg: AerStream) -> None:
        self.cfg = cfg
        self._key = signing_keys(cfg)[0]
        self._conn: _Conn | None = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> _Conn:
        async with self._lock:
            conn = self._conn
            if conn is None or not conn.nc.is_connected:
                if conn is not None:
                    await _abandon(conn.nc)
                nc = await connect(self.cfg, reconnect=False)
                try:
                    await ensure_stream(nc.jetstream(timeout=self.cfg.publish_timeout), self.cfg)
                    conn = _Conn(nc, nc.new_inbox() + ".")
                    await nc.subscribe(conn.prefix + "*", cb=conn.on_ack)
                except BaseException:
                    await _abandon(nc)
                    raise
                self._conn = conn
            return conn

    async def publish(self, events: Sequence[ActivityEvent], salt: str = "") -> int:
        """Publish ``events``; the number of messages. Raises StreamUnavailable."""
        if not events:
            return 0
        timeout = self.cfg.publish_timeout
        msgs = list(messages(self.cfg, events, salt))
        try:
            conn = await asyncio.wait_for(self._connect(), timeout)
        except Exception as exc:  # connection refused, auth, TLS, timeout, JetStream API error
            raise StreamUnavailable(_why(exc)) from exc
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[dict[str, Any]]] = []
        failure: BaseException | None = None
        sign_at = int(time.time() * 1000)
        publish, stream = conn.nc.publish, self.cfg.stream
        try:
            for m in msgs:
                conn.sent += 1
                token = str(conn.sent)
                mac = sign(self._key, m.subject, m.msg_id, m.payload, sign_at)
                headers = {MSG_ID_HEADER: m.msg_id, EXPECTED_STREAM_HEADER: stream,
                           MAC_HEADER: mac}  # fmt: skip
                fut = conn.waiting[token] = loop.create_future()
                await publish(m.subject, m.payload, reply=conn.prefix + token, headers=headers)
                futures.append(fut)
        except Exception as exc:  # disconnected: no buffer, so nothing of it is sent later
            failure = exc
        if futures:
            await asyncio.wait(futures, timeout=timeout)
        stored: list[int] = []
        for m, fut in zip(msgs, futures, strict=False):
            if fut.done() and fut.exception() is None:
                stored.extend(m.positions)
            elif failure is None:
                failure = fut.exception() if fut.done() else TimeoutError(
                    f"no acknowledgement within {timeout:g} s")  # fmt: skip
        if failure is None:
            return len(msgs)
        await self._drop(conn)
        raise StreamUnavailable(_why(failure), stored) from failure

    async def _drop(self, conn: _Conn) -> None:
        async with self._lock:
            if self._conn is conn:
                self._conn = None
        for fut in conn.waiting.values():
            fut.cancel()
        await _abandon(conn.nc)

    async def ready(self) -> str | None:
        """None if events could be published now (connected, the stream in place); else why
        not, in one line (/readyz)."""
        try:
            conn = await self._connect()  # a dropped connection is replaced here, as on publish
        except Exception as exc:  # refused, auth, TLS, timed out, JetStream API error
            return f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return None if conn.nc.is_connected else "disconnected"

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await conn.nc.close()


def _why(exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return f"JetStream did not acknowledge the events ({reason})"


async def _abandon(nc: Any) -> None:
    """Close without sending what the client still buffers: those publishes were answered as
    failed, so they must not reach the stream later."""
    nc._pending = []  # nats-py's outgoing buffer; close() would otherwise flush it
    nc._pending_data_size = 0
    with contextlib.suppress(Exception):
        await nc.close()
