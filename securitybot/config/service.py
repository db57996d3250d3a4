"""The service itself: its database, HTTP server, scheduler, alert kinds and logs."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy.engine import make_url

from securitybot.config.base import Duration, _Section
from securitybot.shipped import ALERTS_DIR


class DatabaseConfig(_Section):
    url: str = "sqlite:///securitybot.db"
    # Connections kept open: as many as the threads that use them (32 handler threads, the
    # outbox's 4 and ingest's writers), so the hot path never opens one per transaction.
    pool_size: int = Field(default=40, ge=1, le=200)
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _parsable(cls, v: str) -> str:
        try:
            make_url(v)
        except Exception:
            # Never echo the URL: it holds the password.
            raise ValueError(
                "not a URL SQLAlchemy can read (libpq's multi-host form h1:5432,h2:5432 is "
                "written ?host=h1:5432&host=h2:5432; percent-encode odd characters)"
            ) from None
        return v


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # SIGTERM to exit: open HTTP requests get a quarter of it, outbox jobs in flight half, and
    # what is left closes connections. Kubernetes' terminationGracePeriodSeconds must be longer.
    shutdown_grace: Duration = Field(default=20.0, le=600)
    # How long an idle keep-alive connection stays open. Longer than the load balancers' and
    # senders' own idle timeouts (AWS ALB and nginx: 60 s), or a request sent as we close the
    # connection fails ("Server disconnected", a 502 behind a proxy). uvicorn's own is 5 s.
    keep_alive_timeout: Duration = Field(default=75.0, ge=1, le=3600)


class SchedulerConfig(_Section):
    sweep_interval: Duration = 1.0
    # How long a replica holds an outbox job it is working on before others may retry it;
    # renewed every third of it while the job runs, so this is only the time survivors wait
    # to pick up the work of a process that died.
    outbox_lease: Duration = 10.0
    enabled: bool = True


class AlertsConfig(_Section):
    dir: str = str(ALERTS_DIR)


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(default=False, alias="json")
    # uvicorn's request lines (off: their query strings can name people, e.g. ?user=alice@...).
    access_log: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
