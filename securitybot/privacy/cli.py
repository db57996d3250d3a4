"""``securitybot purge``, ``erase-person`` and ``export``: the data lifecycle by hand
(docs/privacy.md). ``securitybot.cli`` adds :data:`COMMANDS` to the main group."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from securitybot.cli_support import CONFIG_HELP, fail, settings_from
from securitybot.config import Settings
from securitybot.logs import configure_logging
from securitybot.store.db import Database, SchemaNotReady


def _db(config: str | None) -> tuple[Settings, Database]:
    settings = settings_from(config)
    configure_logging(settings.logging, settings)
    from securitybot.store.db import check_schema

    db = Database.from_url(settings.database.url)
    try:
        check_schema(db.engine)
    except SchemaNotReady as exc:
        db.dispose()
        fail(str(exc), 1)
    return settings, db


@click.command("purge")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
def purge_cmd(config: str | None, dry_run: bool) -> None:
    """Delete what is older than retention.* now (the daily job does the same), or with
    --dry-run show what would go, per category and table."""
    from securitybot.privacy import purge
    from securitybot.privacy.job import current_policy, run_daily

    settings, db = _db(config)
    r = settings.retention
    try:
        if not r.enabled:
            click.echo("retention: every category is kept (retention.* unset or 0): nothing to do")
            return
        if dry_run:
            report = purge.run(db, current_policy(db, r), batch_size=r.batch_size, dry_run=True)
        else:
            got = run_daily(db, r, force=True)
            if got is None:
                fail("purge: another replica is purging now (its lease is held); try later", 1)
            report = got
    finally:
        db.dispose()
    verb = "would purge" if dry_run else "purged"
    for category in ("alerts", "audit", "outbox", "aer"):
        cutoff = report.cutoffs.get(category)
        if cutoff is None:
            click.echo(f"{category}: kept (retention.{category} is 0)")
            continue
        click.echo(f"{category}: {verb} {report.categories.get(category, 0)} rows older than "
                   f"{cutoff:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    for table, n in sorted(report.tables.items()):
        click.echo(f"  {table}: {n}")
    if r.hold:
        h = r.hold
        click.echo(f"held (retention.hold): {len(h.alerts)} alerts, {len(h.people)} people, "
                   f"{len(h.kinds)} kinds; open alerts are never purged")  # fmt: skip


@click.command("erase-person")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--email", required=True, help="The person's email address.")
@click.option("--by", "actor", default=None,
              help="Who asks, for the audit log (default: this login name).")  # fmt: skip
def erase_person_cmd(config: str | None, email: str, actor: str | None) -> None:
    """Erase one person everywhere: pseudonymise what the counts need, delete the rest."""
    import getpass

    from securitybot.ingest.schema import EMAIL_RE
    from securitybot.privacy.erase import EraseRefused, erase_person

    if not EMAIL_RE.match(email.strip()):
        fail(f"erase-person: --email {email!r} is not an email address")
    settings, db = _db(config)
    try:
        done = erase_person(db, email, actor=(actor or f"cli:{getpass.getuser()}")[:64],
                            via="cli", retention=settings.retention)  # fmt: skip
    except EraseRefused as exc:
        fail(f"erase-person: refused: {exc.reason}", 1)
    finally:
        db.dispose()
    click.echo(f"erased as {done.pseudonym}: {done.total} rows")
    for table, n in sorted(done.rows.items()):
        click.echo(f"  {table}: {n}")
    click.echo("running servers drop their in-memory Slack cache of the person within "
               "slack.user_cache_ttl")  # fmt: skip


def _when(value: str, name: str) -> datetime:
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"export: {name} {value!r} is not a date or an ISO 8601 time (2026-01-31T00:00Z)")
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@click.command("export")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--since", required=True, help="From this date or time (UTC unless it says).")
@click.option("--until", required=True, help="Up to (not including) this date or time.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)  # fmt: skip
@click.option("--audit", is_flag=True, help="Also every audit row of the range, after alerts.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write here instead of standard output.")  # fmt: skip
def export_cmd(config: str | None, since: str, until: str, fmt: str, audit: bool,
               output: str | None) -> None:  # fmt: skip
    """Stream alerts created in [--since, --until) with their timelines, oldest first."""
    import sys

    from securitybot.privacy.export import records, write

    start, end = _when(since, "--since"), _when(until, "--until")
    if start >= end:
        fail("export: --since must be before --until")
    _, db = _db(config)
    try:
        if output is None:
            n = write(sys.stdout, records(db, start, end, audit=audit), fmt)
        else:
            with open(output, "w", encoding="utf-8", newline="") as f:
                n = write(f, records(db, start, end, audit=audit), fmt)
    finally:
        db.dispose()
    click.echo(f"exported {n} records", err=True)


COMMANDS = (purge_cmd, erase_person_cmd, export_cmd)
