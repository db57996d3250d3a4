from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from securitybot.demo import FakeDuo, FakeOkta, FakeSlack
from tests.e2e.harness import (
    IKEY,
    OKTA_TOKEN,
    SECURITY_CHANNEL,
    SKEY,
    Bot,
    FakeVerifier,
    e2e_settings,
    running_bot,
)

MakeBot = Callable[..., Bot]


@pytest.fixture
def fs() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user("UALICE", "alice@example.com", real_name="Alice Liddell", first_name="Alice")
        fake.add_user("UBOB", "bob@example.com", real_name="Bob Builder", first_name="Bob")
        fake.add_user("UMALLORY", "mallory@example.com", real_name="Mallory", first_name="Mallory")
        fake.add_user("UGONE", "gone@example.com", deleted=True)
        fake.add_channel(SECURITY_CHANNEL)
        fake.admin_token = "xoxp-admin"
        yield fake


@pytest.fixture
def verifier(request: pytest.FixtureRequest) -> str:
    """The second factor the bot is wired to: Duo unless a module parametrises it, e.g.
    ``pytestmark = pytest.mark.parametrize("verifier", VERIFIERS, indirect=True)``."""
    return str(getattr(request, "param", "duo"))


@pytest.fixture
def fd(verifier: str) -> Iterator[FakeVerifier]:
    """The fake second factor (Duo or Okta), with Alice and Bob enrolled for push. Duo knows
    them by their email's local part (duo.username's default), Okta by their email."""
    if verifier == "okta":
        with FakeOkta(token=OKTA_TOKEN) as okta:
            okta.enroll("alice@example.com")
            okta.enroll("bob@example.com")
            yield okta
        return
    with FakeDuo(ikey=IKEY, skey=SKEY) as fake:
        fake.enroll("alice")
        fake.enroll("bob")
        yield fake


@pytest.fixture
def bot(db_url: str, fs: FakeSlack, fd: FakeVerifier) -> Iterator[Bot]:
    with running_bot(e2e_settings(db_url, fs, fd), fs, fd) as b:
        yield b


@pytest.fixture
def make_bot(db_url: str, fs: FakeSlack, fd: FakeVerifier) -> Iterator[MakeBot]:
    """A bot with config overrides: ``make_bot(policy={"ack_timeout": 1})``."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Bot:
            return stack.enter_context(
                running_bot(e2e_settings(db_url, fs, fd, **overrides), fs, fd)
            )

        yield make
