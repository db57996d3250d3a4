"""The one comparison of secrets: constant-time, on bytes, whatever a caller sent.

``hmac.compare_digest`` raises ``TypeError`` for a ``str`` with a non-ASCII character, so a
header such as ``X-Slack-Signature: \\xff\\xfe`` (Starlette decodes headers as Latin-1) or a
form field ``csrf=%C3%A9`` became a 500 before authentication. Every secret is compared here,
as UTF-8 bytes; ``surrogatepass`` keeps even a lone surrogate from raising.
"""

from __future__ import annotations

import hmac


def as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def equal(expected: str | bytes | None, given: str | bytes | None) -> bool:
    """Whether ``given`` is ``expected``, in time independent of where they differ; an absent or
    empty value matches nothing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(as_bytes(expected), as_bytes(given))
