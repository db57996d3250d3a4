"""Sign requests as Slack does for the real Bolt endpoint (``X-Slack-Signature``), and the
headers of Slack's retries. The bodies themselves: ``slack_event_bodies`` (Events API) and
``slack_interaction_bodies`` (clicks, submissions, slash commands).
"""

from __future__ import annotations

import hashlib
import hmac
import time

_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def sign(signing_secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers for POSTing `body`; the content type is inferred from the body's shape."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": _JSON if body.lstrip().startswith("{") else _FORM,
    }


def retry_headers(num: int, reason: str = "http_timeout") -> dict[str, str]:
    """The headers Slack adds when it re-sends an event it thinks failed (same body, same
    ``event_id``, a fresh signature). Reasons per Slack's Events API docs: http_timeout (no
    answer within 3 s), http_error, connection_failed, ssl_error, too_many_redirects,
    unknown_error. Slack retries up to three times: at once, after 1 and after 5 minutes."""
    return {"X-Slack-Retry-Num": str(num), "X-Slack-Retry-Reason": reason}
