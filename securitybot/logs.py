"""Logging set-up: readable lines by default, one JSON object per line when configured."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from securitybot.config import LoggingConfig, Settings
from securitybot.masking import ScrubbingFormatter, known_secrets, settings_secrets
from securitybot.request_ids import RequestIdFilter
from securitybot.store.outage import OutageLogFilter

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


# ``token=<secret>`` in a URL (Splunk's and Falco's webhooks cannot send headers); uvicorn's
# request lines (logging.access_log) and httpx's would otherwise print it.
_QUERY_TOKEN = re.compile(r"([?&;]token=)[^&\s\"']*", re.IGNORECASE)


def redact_query_tokens(text: str) -> str:
    return _QUERY_TOKEN.sub(r"\1[redacted]", text) if "token=" in text.lower() else text


class RedactQueryTokens(logging.Filter):
    """Rewrites every record so no query-string token reaches a log line, whoever logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query_tokens(a) if isinstance(a, str) else a for a in record.args
            )
        return True


def configure_logging(
    cfg: LoggingConfig, settings: Settings | None = None, *, migrations: bool = False
) -> None:
    """Log to stderr; with ``settings``, none of its secrets is ever written (any logger, any
    traceback: a driver's error may quote the database URL it was given). ``migrations``: show
    Alembic's INFO lines (``migrate`` wants "Running upgrade ..."; for every other command they
    are noise before its own first line)."""
    if settings is not None:
        known_secrets.add(settings_secrets(settings))
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactQueryTokens())
    handler.addFilter(OutageLogFilter())
    inner = (
        JsonFormatter()
        if cfg.json_format
        else logging.Formatter("%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s")
    )
    handler.setFormatter(ScrubbingFormatter(inner, known_secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(cfg.level)
    # Library chatter at INFO would log request URLs that can carry user emails.
    for noisy in ("slack_sdk", "slack_bolt", "urllib3", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    alembic = root.level if migrations else max(logging.WARNING, root.level)
    logging.getLogger("alembic").setLevel(alembic)
    # slack_sdk builds its debug lines (the whole request and response) unless its clients'
    # *own* logger level is above DEBUG; an inherited level does not count.
    for client in ("slack_sdk.web.async_base_client", "slack_sdk.web.base_client"):
        logging.getLogger(client).setLevel(logging.getLogger("slack_sdk").level)
    # uvicorn's loggers go through this same handler (serve passes uvicorn no log_config), so
    # its tracebacks and request lines are JSON too when JSON is on. Its start-up chatter stays
    # below WARNING; request lines appear only with logging.access_log.
    for name, level in (("uvicorn", max(logging.WARNING, root.level)),
                        ("uvicorn.error", max(logging.WARNING, root.level)),
                        ("uvicorn.access", root.level)):  # fmt: skip
        uv = logging.getLogger(name)
        uv.handlers[:] = []
        uv.propagate = True
        uv.setLevel(level)
