"""Duo's Auth API over one asyncio HTTP client: connections are reused, and a held
``auth_status`` long-poll costs a socket and a coroutine, not a thread and a TLS handshake.

Requests are signed by duo_client's own code (``duo_client.client.sign``, signature version 5,
as ``duo_client.Client.api_call`` builds them: JSON bodies for POST, the query for GET, the
bare API hostname, an RFC 2822 ``Date``), so Duo sees exactly what duo_client would send.
Server certificates are checked against duo_client's pinned CA bundle unless ``duo.ca_certs``
says otherwise.

A ``429`` is honoured the way duo_client does it (wait 1 s, 2 s, 4 s … up to 32 s, plus up to
a second of jitter, then give up with the 429), except that the wait is shared: while Duo is
refusing, no request of this process is sent, so a burst of pushes backs off together instead
of each one hammering Duo on its own schedule.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import socket
import ssl
import time
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpcore
import httpx
from duo_client.client import DEFAULT_CA_CERTS, Client, normalize_params, sign

from securitybot.config import DuoConfig

SIG_VERSION = 5
# duo_client.Client's backoff on 429 (its _INITIAL/_MAX_BACKOFF_WAIT_SECS, _BACKOFF_FACTOR).
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 32.0
BACKOFF_FACTOR = 2.0


class DuoApiError(Exception):
    """Duo answered with an error (``status``, Duo's ``code``), worded as duo_client words it
    ("Received 400 Invalid request parameters (txid)")."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def signed_request(
    ikey: str, skey: str, host: str, method: str, path: str, params: Mapping[str, str],
    date: str | None = None,
) -> tuple[str, dict[str, str], bytes | None]:  # fmt: skip
    """(uri, headers, body) of one Auth API call, built and signed as duo_client builds them."""
    date = date or email.utils.formatdate()
    if method in ("POST", "PUT", "PATCH"):
        body = Client.canon_json(dict(params))
        auth = sign(ikey, skey, method, host, path, date, SIG_VERSION, {}, body=body,
                    additional_headers={})  # fmt: skip
        headers = {"Authorization": auth, "Date": date, "Content-type": "application/json"}
        return path, headers, body.encode()
    query = normalize_params(dict(params))
    auth = sign(ikey, skey, method, host, path, date, SIG_VERSION, query, body="",
                additional_headers={})  # fmt: skip
    uri = path + "?" + urlencode(query, doseq=True)
    return uri, {"Authorization": auth, "Date": date}, None


class _OwnResolver(httpcore.AsyncNetworkBackend):
    """Connects as httpx would, but resolves Duo's hostname in threads of its own.

    asyncio resolves names in the loop's default executor, which the handlers also use for
    their database work; in a burst those threads queue on the database, and a push's
    long-poll waited seconds for a name lookup before it reached Duo. A literal IP address
    skips anyio's own lookup, and TLS still verifies the hostname (httpcore takes it from the
    URL, not from the address connected to)."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="duo-dns")

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.run_in_executor(
                self._pool, socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM
            )
        except OSError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from exc
        failure: Exception | None = None
        for *_, sockaddr in infos:
            try:
                return await self._inner.connect_tcp(
                    str(sockaddr[0]), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host}: no address")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:  # fmt: skip
        return await self._inner.connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)

    def close(self) -> None:
        self._pool.shutdown(wait=False)


# httpcore's pool scans all its requests and connections whenever one starts or ends: with
# thousands of held polls in one pool, that scan was most of the CPU. Calls are spread over
# this many pools instead (a push's polls always in the same one), each reusing its connections.
SHARDS = 32
# Pushes remembered for their poll's pool: more than are ever waiting on phones at once.
MAX_PINNED = 20_000


class DuoAuthApi:
    """Pooled HTTPS clients for Duo's Auth API (create and use them on the event loop)."""

    def __init__(
        self, cfg: DuoConfig, *, max_connections: int | None = None, shards: int = SHARDS
    ) -> None:
        assert cfg.ikey is not None and cfg.skey is not None
        host, port = cfg.host_and_port
        self._ikey, self._skey, self._host = cfg.ikey, cfg.skey, host
        self._base = f"https://{host}:{port}" if port is not None else f"https://{host}"
        self._cafile = cfg.ca_certs or DEFAULT_CA_CERTS
        self._timeout = cfg.timeout
        self._max_connections = max_connections
        self._clients: list[httpx.AsyncClient] = []
        self._shards = shards
        self._resolver: _OwnResolver | None = None
        self._paused_until = 0.0  # monotonic: no request leaves before (Duo said 429)
        # txid -> the key of the push's own calls: its poll goes to the pool that holds the
        # connection its auth just used (kept alive there), not to a new TLS handshake.
        self._pinned: OrderedDict[str, str] = OrderedDict()

    def pin(self, txid: str, key: str) -> None:
        """Send ``txid``'s calls to the pool of ``key`` (the username that pushed it)."""
        self._pinned[txid] = key
        while len(self._pinned) > MAX_PINNED:
            self._pinned.popitem(last=False)  # an abandoned push's: its own pool then

    def unpin(self, txid: str) -> None:
        self._pinned.pop(txid, None)

    def _http(self, key: str) -> httpx.AsyncClient:
        if not self._clients:
            context = ssl.create_default_context(cafile=self._cafile)
            self._resolver = _OwnResolver()
            for _ in range(self._shards):
                transport = httpx.AsyncHTTPTransport(verify=context)
                # httpx takes no network backend of its own; its pool does (_OwnResolver).
                # Every waiting push holds one connection in Duo's long-poll; the others are
                # kept alive for the next call instead of a new handshake each time. A burst's
                # worth of them (32 a pool, 15 s): with 8 for 5 s, 2,000 pushes at once cost
                # 4,199 handshakes and approval -> resolved p99 1.05 s; now 565 and 0.69 s.
                transport._pool = httpcore.AsyncConnectionPool(
                    ssl_context=context, max_connections=self._max_connections,
                    max_keepalive_connections=32, keepalive_expiry=15.0,
                    network_backend=self._resolver,
                )  # fmt: skip
                self._clients.append(httpx.AsyncClient(
                    base_url=self._base, transport=transport, timeout=self._timeout,
                    follow_redirects=False, headers={"User-Agent": "securitybot"},
                ))  # fmt: skip
        return self._clients[zlib.crc32(key.encode()) % len(self._clients)]

    async def call(
        self, method: str, path: str, params: Mapping[str, str], *, timeout: float | None = None
    ) -> Any:
        """The ``response`` of Duo's ``{"stat": "OK", "response": ...}``; DuoApiError for any
        other answer, httpx.HTTPError when Duo could not be reached."""
        wait = BACKOFF_FIRST
        while True:
            delay = self._paused_until - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            uri, headers, body = signed_request(
                self._ikey, self._skey.get_secret_value(), self._host, method, path, params
            )
            key = str(params.get("txid") or params.get("username") or "")
            key = self._pinned.get(key, key)
            resp = await self._http(key).request(
                method, uri, headers=headers, content=body,
                timeout=timeout if timeout is not None else self._timeout,
            )  # fmt: skip
            if resp.status_code != 429 or wait > BACKOFF_MAX:
                return _parse(resp)
            pause = wait + random.uniform(0.0, 1.0)  # jitter, not a secret
            self._paused_until = max(self._paused_until, time.monotonic() + pause)
            wait *= BACKOFF_FACTOR

    async def aclose(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()
        if self._resolver is not None:
            self._resolver.close()


def _parse(resp: httpx.Response) -> Any:
    try:
        data = json.loads(resp.content)
    except ValueError:
        data = None
    if resp.status_code != 200:
        if isinstance(data, Mapping) and data.get("stat") == "FAIL" and "message" in data:
            detail = f" ({data['message_detail']})" if "message_detail" in data else ""
            code = data.get("code")
            raise DuoApiError(
                resp.status_code,
                f"Received {resp.status_code} {data['message']}{detail}",
                code if isinstance(code, int) else None,
            )
        raise DuoApiError(resp.status_code, f"Received {resp.status_code} {resp.reason_phrase}")
    if not isinstance(data, Mapping) or data.get("stat") != "OK" or "response" not in data:
        raise DuoApiError(resp.status_code, f"Received bad response: {resp.text[:200]}")
    return data["response"]
