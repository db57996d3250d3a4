from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from securitybot.demo import FakeDuo, FakeSlack
from tests.e2e.harness import IKEY, SECURITY_CHANNEL, SKEY, Bot, e2e_settings, running_bot

MakeBot = Callable[..., Bot]


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("U_ALICE", "alice@example.com", real_name="Alice Liddell", first_name="Alice")
        fake.add_user("U_BOB", "bob@example.com", real_name="Bob Builder", first_name="Bob")
        fake.add_user("U_MALLORY", "mallory@example.com", real_name="Mallory", first_name="Mallory")
        fake.add_user("U_GONE", "gone@example.com", deleted=True)
        fake.add_channel(SECURITY_CHANNEL)
        fake.admin_token = "xoxp-admin"
        yield fake


@pytest.fixture
def fd() -> Iterator[FakeDuo]:
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        fake.enroll("alice")
        fake.enroll("bob")
        yield fake


@pytest.fixture
def bot(db_url: str, fs: FakeSlack, fd: FakeDuo) -> Iterator[Bot]:
    with running_bot(e2e_settings(db_url, fs, fd), fs, fd) as b:
        yield b


@pytest.fixture
def make_bot(db_url: str, fs: FakeSlack, fd: FakeDuo) -> Iterator[MakeBot]:
    """A bot with config overrides: ``make_bot(policy={"ack_timeout": 1})``."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Bot:
            return stack.enter_context(
                running_bot(e2e_settings(db_url, fs, fd, **overrides), fs, fd)
            )

        yield make
