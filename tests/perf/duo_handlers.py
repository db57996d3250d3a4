"""The conversation's handlers against a real DuoVerifier talking to the fake Duo, with no
Slack and nobody woken: what the Duo performance tests share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from securitybot.config import DuoConfig, Settings
from securitybot.demo import FakeDuo
from securitybot.flows.conversation import ConversationHandlers
from securitybot.kinds import load_kinds
from securitybot.store.db import Database
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
