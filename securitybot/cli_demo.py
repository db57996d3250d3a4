"""``securitybot demo``: the real bot against local fakes of Slack and Duo (or Okta), with a
web console. The fakes (:mod:`securitybot.demo`) are imported only once the command runs."""

from __future__ import annotations

import logging
import sys

import click

from securitybot.cli_support import fail


@click.command("demo")
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.option("--no-browser", is_flag=True, help="Do not open a web browser.")
@click.option(
    "--scenario",
    type=click.Choice(["attack"]),
    default=None,
    help="Play a story by itself: 'attack' is a stolen key and a fake 'ack'.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="SQLite file to keep (default: a fresh temporary database).",
)
@click.option(
    "--verifier",
    type=click.Choice(["duo", "okta"]),
    default="duo",
    show_default=True,
    help="The second factor to fake: Duo push or Okta Verify push.",
)
@click.option(
    "--grid",
    is_flag=True,
    help="Slack Enterprise Grid: one org-wide install, people in two workspaces.",
)
def demo(
    port: int,
    no_browser: bool,
    scenario: str | None,
    db_path: str | None,
    verifier: str,
    grid: bool,
) -> None:
    """Run the real bot against local fakes of Slack and Duo (or Okta), with a web console."""
    import contextlib
    import os
    import socket
    import webbrowser

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("securitybot", "slack_bolt", "apscheduler", "httpx", "uvicorn", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("securitybot.demo.app").setLevel(logging.INFO)
    try:
        # The fakes import trustme (their throwaway TLS CA) only once started: check it here.
        import trustme  # noqa: F401

        from securitybot.demo.app import DASHBOARD_USER, INGEST_TOKEN, Demo
    except ImportError as exc:  # trustme comes with the demo extra
        fail(f"demo: missing {exc.name}; install with: pip install 'securitybot[demo]'", 1)

    with socket.socket() as probe:
        # uvicorn would only notice after the fakes started; say it plainly and early.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            fail(f"demo: cannot listen on 127.0.0.1:{port} ({exc.strerror}); try --port N", 1)
    runner = Demo(port=port, scenario=scenario, db_path=db_path, verifier=verifier, grid=grid)
    url = f"http://127.0.0.1:{port}/demo"

    def ready() -> None:
        click.echo(f"Securitybot demo running: {url}")
        click.echo(
            f"Dashboard: http://127.0.0.1:{port}/dashboard  "
            f"(user {DASHBOARD_USER}, password {runner.dashboard_password})"
        )
        # The README's API examples work against the demo with this token.
        click.echo(f"API: http://127.0.0.1:{port}/api/v1/alerts with "
                   f"'Authorization: Bearer {INGEST_TOKEN}'")  # fmt: skip
        click.echo(
            f"Timings are short for the demo: {runner.ack_timeout:.0f} s to answer, "
            f"{runner.duo_timeout:.0f} s to approve a push. Ctrl-C stops."
        )
        has_display = sys.platform in ("darwin", "win32") or bool(
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        )
        if not no_browser and has_display:
            webbrowser.open(url)

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the demo ends
        runner.run(on_ready=ready)
