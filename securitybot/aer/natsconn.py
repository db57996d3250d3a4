"""Connecting to NATS as ``aer.stream`` says: credentials, TLS, and whether to reconnect."""

from __future__ import annotations

import logging
import ssl
from typing import Any
from urllib.parse import urlsplit

from securitybot.config import AerStream

logger = logging.getLogger(__name__)


def options(cfg: AerStream, *, reconnect: bool) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect``.

    ``reconnect=False`` (the publisher): no reconnect buffer (``pending_size=0``: a publish
    while disconnected fails at once) and no reconnecting by itself, so nothing the server
    answered 503 for can be sent later. Workers reconnect: what they send is acks.
    """
    opts: dict[str, Any] = {"servers": [cfg.url], "connect_timeout": cfg.publish_timeout}
    if reconnect:
        opts["max_reconnect_attempts"] = -1
    else:
        opts.update(allow_reconnect=False, pending_size=0)
    if cfg.user is not None and cfg.password is not None:
        opts["user"], opts["password"] = cfg.user, cfg.password.get_secret_value()
    elif cfg.token is not None:
        opts["token"] = cfg.token.get_secret_value()
    elif cfg.nkey_seed is not None:
        opts["nkeys_seed_str"] = cfg.nkey_seed.get_secret_value()
    elif cfg.creds is not None:
        from nats.aio.client import RawCredentials

        opts["user_credentials"] = RawCredentials(cfg.creds.get_secret_value())
    if cfg.tls.configured or urlsplit(cfg.url).scheme == "tls":
        ctx = ssl.create_default_context(cafile=cfg.tls.ca)
        if cfg.tls.cert is not None:
            ctx.load_cert_chain(cfg.tls.cert, cfg.tls.key)
        opts["tls"] = ctx
    return opts


async def connect(cfg: AerStream, *, reconnect: bool) -> Any:
    import nats

    return await nats.connect(**options(cfg, reconnect=reconnect))


def has_credentials(cfg: AerStream) -> bool:
    url = urlsplit(cfg.url)
    return bool(
        cfg.user or cfg.token or cfg.nkey_seed or cfg.creds or cfg.tls.cert
        or url.username or url.password
    )  # fmt: skip


def warn_without_credentials(cfg: AerStream, who: str) -> None:
    """One line at start when anyone who reaches NATS may read and fill the event stream."""
    if not has_credentials(cfg):
        logger.warning(
            "%s: aer.stream connects to NATS without credentials: anyone who can reach it can "
            "read the events and flood the stream (unsigned messages are dead-lettered); set "
            "aer.stream.user/password, token, nkey_seed or creds (docs/scaling.md)", who,
        )  # fmt: skip
