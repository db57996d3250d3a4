"""Per-source token buckets for the ingest API, so one noisy tool cannot starve the others.

Each source has its own bucket (``ingest.rate_limit``, or ``ingest.rate_limits.<source>``); a
request takes one token. Buckets live in the process: with several replicas each enforces the
limit on its own share of the traffic, which is what a load balancer spreading requests needs.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from securitybot.api.common import ApiError
from securitybot.config import IngestConfig, RateLimit
from securitybot.token_bucket import Bucket


class RateLimited(ApiError):
    """429 with ``Retry-After``; handled by the app's ApiError handler like any API error."""

    def __init__(self, source: str, retry_after: float) -> None:
        super().__init__(
            429,
            "rate_limited",
            f"source {source!r} is over its rate limit; retry in {retry_after:.1f}s",
        )
        self.retry_after = retry_after

    def response(self) -> JSONResponse:
        resp = super().response()
        # Whole seconds, at least 1: the header does not allow fractions.
        resp.headers["Retry-After"] = str(max(1, math.ceil(self.retry_after)))
        return resp


class RateLimiter:
    def __init__(self, cfg: IngestConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._default = cfg.rate_limit
        self._per_source = dict(cfg.rate_limits)
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}
        # Endpoints run on the event loop, but tests and tools may call from threads too.
        self._lock = threading.Lock()

    def _limit(self, source: str) -> RateLimit:
        return self._per_source.get(source, self._default)

    def take(self, source: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(source)
            if bucket is None:
                limit = self._limit(source)
                bucket = self._buckets[source] = Bucket(limit.rate, float(limit.burst))
            return bucket.take(now)


def limiter_for(request: Request) -> RateLimiter:
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
    if limiter is None:
        # Created on first use from the runtime's settings, so every app gets its own buckets.
        limiter = RateLimiter(state.runtime.settings.ingest)
        state.rate_limiter = limiter
    return limiter


def enforce(request: Request, source: str) -> None:
    """Call right after authentication on every ingest POST; raises 429 when over the limit."""
    wait = limiter_for(request).take(source)
    if wait > 0:
        raise RateLimited(source, wait)
