"""The conversation's handlers against a real DuoVerifier talking to the fake Duo, with no
Slack and nobody woken: what the Duo performance tests share."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from securitybot.config import DuoConfig, Settings
from securitybot.demo import FakeDuo
from securitybot.flows.conversation import HELD_EFFECTS, UNORDERED_EFFECTS, ConversationHandlers
from securitybot.kinds import load_kinds
from securitybot.outbox.dispatcher import Dispatcher
from securitybot.store.db import Database
from securitybot.store.models import Alert
from securitybot.store.outbox import enqueue
from securitybot.verify.duo import MAX_HELD_POLLS, DuoVerifier

IKEY, SKEY = "DIXXXXXXXXXXXXXXXXXX", "s" * 40


@contextmanager
def duo_handlers(
    db: Database, *, max_polls: int = MAX_HELD_POLLS
) -> Iterator[tuple[FakeDuo, DuoVerifier, ConversationHandlers]]:
    """The fake Duo (alice enrolled), a verifier for it and the handlers using that verifier."""
    with FakeDuo(ikey=IKEY, skey=SKEY) as fd:
        fd.enroll("alice")
        cfg = DuoConfig.model_validate({"ikey": IKEY, "skey": SKEY, "api_host": fd.api_host,
                                        "ca_certs": fd.ca_path})  # fmt: skip
        verifier = DuoVerifier(cfg, max_polls=max_polls)
        settings = Settings()
        handlers = ConversationHandlers(db=db, settings=settings,
                                        kinds=load_kinds(settings.alerts.dir), slack=None,
                                        verifier=verifier, wake=lambda *_: None)  # fmt: skip
        yield fd, verifier, handlers


def awaiting_push(db: Database) -> int:
    """An alert waiting for alice's push, its start_duo_push job queued."""
    with db.write() as session:
        alert = Alert(kind="sensitive_command", severity="high", source="test",
                      user_given="alice@example.com", title="flurb -export", description="",
                      status="awaiting_2fa", details={})  # fmt: skip
        session.add(alert)
        session.flush()
        enqueue(session, effect="start_duo_push", alert_id=alert.id,
                idempotency_key=f"push:{alert.id}")  # fmt: skip
        return alert.id


def read_alert(db: Database, alert_id: int) -> Alert:
    with db.read() as session:
        found = session.get(Alert, alert_id)
        assert found is not None
        return found


def gate_record(handlers: Any, gate: threading.Event, *, fail: Exception | None = None) -> None:
    """Recording the push waits for ``gate`` (a commit queued behind a burst of others), then
    records it, or with ``fail`` raises that instead (the write failed)."""
    record = handlers._record_push

    def slow(*args: Any) -> Any:
        gate.wait(10)
        if fail is not None:
            raise fail
        return record(*args)

    handlers._record_push = slow


@contextmanager
def recorded_slowly(
    db: Database, *, fail: Exception | None = None
) -> Iterator[tuple[FakeDuo, DuoVerifier, ConversationHandlers, Dispatcher, threading.Event]]:
    """The handlers against the fake Duo, a dispatcher they hand their jobs over to (nobody
    woken, no claim for a minute), and a gate the push's record waits for (``gate_record``)."""
    with duo_handlers(db) as (fd, verifier, handlers):
        dispatcher = Dispatcher(db, handlers.handlers(), idle_poll=60.0,
                                unordered=UNORDERED_EFFECTS, held=HELD_EFFECTS)  # fmt: skip
        handlers.handover = dispatcher
        gate = threading.Event()
        gate_record(handlers, gate, fail=fail)
        yield fd, verifier, handlers, dispatcher, gate


async def until(check: Any, seconds: float = 10.0) -> bool:
    """Whether ``check()`` (run in a thread) came true, looked at until ``seconds`` passed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await asyncio.to_thread(check):
            return True
        await asyncio.sleep(0.02)
    return False
