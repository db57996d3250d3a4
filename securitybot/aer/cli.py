"""``securitybot aer ...``: Anomaly Event Response maintenance by hand (baselines, the stream
worker, the Tor exit list, dead letters). ``securitybot.cli`` adds :data:`aer` to the main group."""

from __future__ import annotations

import click

from securitybot.aer.deadletters_cli import aer_dead_letters
from securitybot.cli_support import CONFIG_HELP, checked_db, fail, settings_from
from securitybot.logs import configure_logging


@click.group("aer")
def aer() -> None:
    """Anomaly Event Response maintenance."""


@aer.command("refresh-baselines")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
def aer_refresh_baselines(config: str | None) -> None:
    """Re-learn every org's dynamic thresholds from the persisted hourly counters."""
    settings = settings_from(config)
    configure_logging(settings.logging, settings)
    from securitybot.aer.service import AerService

    with checked_db(settings) as db:
        r = AerService(settings.aer, db).refresh_baselines()
    # Running servers poll aer_versions (and LISTEN on PostgreSQL): they pick this up in seconds.
    click.echo(f"refreshed {r.learned} baselines, {r.changed} changed (version {r.version})")


@aer.command("worker")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    envvar="SECURITYBOT_AER_WORKER_METRICS_PORT",
    help="Serve this worker's Prometheus /metrics on this port (0: off).",
)
@click.option(
    "--metrics-host",
    default="0.0.0.0",
    show_default=True,
    help="Address the worker's /metrics listens on.",
)
def aer_worker(config: str | None, metrics_port: int, metrics_host: str) -> None:
    """Consume AER events from NATS JetStream (aer.stream) and detect on them."""
    settings = settings_from(config)
    configure_logging(settings.logging, settings)
    if settings.aer.stream is None:
        fail("aer.stream is not configured: events are processed by the server itself", 2)
    from securitybot.aer.worker import run_worker

    with checked_db(settings) as db:
        run_worker(settings, db, metrics_port, metrics_host)


@aer.command("update-tor-list")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--url", default=None, help="Override aer.tor_list_url.")
def aer_update_tor_list(config: str | None, url: str | None) -> None:
    """Download the Tor exit list, validate it and publish it to every running process."""
    settings = settings_from(config)
    configure_logging(settings.logging, settings)
    from securitybot.aer.torlist import TorListError, update_tor_list

    a = settings.aer
    with checked_db(settings) as db:
        try:
            r = update_tor_list(
                db, url or a.tor_list_url, min_entries=a.tor_list_min_entries,
                max_entries=a.tor_list_max_entries,
            )  # fmt: skip
        except TorListError as exc:
            fail(f"update-tor-list: refused, the previous list stays in force: {exc}", 1)
    click.echo(f"stored {r.entries} Tor exits (+{r.added} -{r.removed}, version {r.version})")


# `securitybot aer dead-letters ...` lives beside the dead letters.
aer.add_command(aer_dead_letters)
