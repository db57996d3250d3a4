"""``securitybot aer dead-letters list|replay``: an operator looks at the stream messages
workers refused and re-publishes what they vouch for (see :mod:`securitybot.aer.deadletters`)."""

from __future__ import annotations

import json
import sys

import click

from securitybot.aer.deadletters import REASONS as DEAD_LETTER_REASONS
from securitybot.cli_support import CONFIG_HELP, checked_db, fail, settings_from
from securitybot.config import Settings
from securitybot.logs import configure_logging


@click.group("dead-letters")
def aer_dead_letters() -> None:
    """Stream messages workers would not act on (bad MAC, undecodable, invalid)."""


def _stream_settings(config: str | None) -> Settings:
    settings = settings_from(config)
    configure_logging(settings.logging, settings)
    if settings.aer.stream is None:
        fail("aer.stream is not configured: there is no stream and no dead letters", 2)
    return settings


@aer_dead_letters.command("list")
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--reason", type=click.Choice(DEAD_LETTER_REASONS), default=None)
@click.option("--pending", is_flag=True, help="Only those not replayed yet.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with the body.")
def aer_dead_letters_list(
    config: str | None, reason: str | None, pending: bool, limit: int, as_json: bool
) -> None:
    """Show dead letters, oldest first: id, when stored, reason, subject, sequence, detail."""
    from securitybot.aer.deadletters import listing

    settings = _stream_settings(config)
    assert settings.aer.stream is not None
    with checked_db(settings) as db, db.read() as session:
        rows = listing(session, settings.aer.stream.stream, reason=reason, limit=limit,
                       include_replayed=not pending)  # fmt: skip
        for r in rows:
            replayed = (f"replayed {r.replayed_at:%Y-%m-%dT%H:%M:%SZ} by {r.replayed_by}"
                        if r.replayed_at else "not replayed")  # fmt: skip
            if as_json:
                click.echo(json.dumps({
                    "id": r.id, "stored_at": r.stored_at.isoformat(), "reason": r.reason,
                    "subject": r.subject, "seq": r.seq, "partition": r.partition,
                    "detail": r.detail, "msg_id": r.msg_id, "headers": r.headers,
                    "data": r.data.decode("utf-8", "replace"),
                    "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
                    "replayed_by": r.replayed_by,
                }))  # fmt: skip
            else:
                click.echo(f"{r.id}\t{r.stored_at:%Y-%m-%dT%H:%M:%SZ}\t{r.reason}\t"
                           f"{r.subject}#{r.seq}\t{len(r.data)} bytes\t{replayed}\t"
                           f"{r.detail}")  # fmt: skip
    if not rows and not as_json:
        click.echo("no dead letters")


@aer_dead_letters.command("replay")
@click.argument("ids", nargs=-1, type=click.IntRange(1))
@click.option("--config", "config", type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--reason", type=click.Choice(DEAD_LETTER_REASONS), default=None,
              help="Every dead letter of this reason not yet replayed (not with IDS).")  # fmt: skip
@click.option("--again", is_flag=True, help="Also those replayed before.")
@click.option("--by", "actor", default=None, help="Who asks (audit log); default: $USER.")
def aer_dead_letters_replay(
    ids: tuple[int, ...], config: str | None, reason: str | None, again: bool, actor: str | None
) -> None:
    """Publish dead letters' events again, signed now, after validating them as the API would.

    A replay vouches for the message: look at it first (`list --json`); a message that failed
    its MAC may be a forgery.
    """
    import asyncio
    import getpass

    from securitybot.aer.deadletters import listing, replay

    if bool(ids) == bool(reason):
        fail("aer dead-letters replay: name the IDS or a --reason, not both or neither", 2)
    settings = _stream_settings(config)
    cfg = settings.aer.stream
    assert cfg is not None
    with checked_db(settings) as db:
        if reason:
            with db.read() as session:
                found = listing(session, cfg.stream, reason=reason, limit=10_000,
                                include_replayed=again)  # fmt: skip
                ids = tuple(r.id for r in found)
        who = actor or f"cli:{getpass.getuser()}"
        results = asyncio.run(replay(db, cfg, ids, actor=who, again=again))
    failed = 0
    for r in results:
        if r.refused is None:
            click.echo(f"{r.id}: replayed {r.events} events")
        else:
            failed += 1
            click.echo(f"{r.id}: not replayed: {r.refused}")
    if not results:
        click.echo("nothing to replay")
    if failed:
        sys.exit(1)
