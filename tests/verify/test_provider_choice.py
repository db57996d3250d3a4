"""verify.provider picks the verifier; an unconfigured provider is one that escalates every
"yes" and says which provider is missing, never a silent fall-back to the other one."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from securitybot.config import Settings
from securitybot.verify.base import StartResult
from securitybot.verify.duo import DuoVerifier
from securitybot.verify.okta import OktaVerifier
from securitybot.wiring import build_verifier

DUO = {"ikey": "DIXXXXXXXXXXXXXXXXXX", "skey": "s" * 40, "api_host": "api-x.duosecurity.com"}
OKTA = {"org_url": "https://acme.okta.com", "api_token": "00" + "t" * 40}


def _verifier(**config: Any) -> Any:
    return build_verifier(SimpleNamespace(settings=Settings.model_validate(config)))  # type: ignore[arg-type]


async def test_duo_by_default_okta_when_chosen() -> None:
    assert isinstance(_verifier(duo=DUO, okta=OKTA), DuoVerifier)
    assert isinstance(_verifier(duo=DUO, okta=OKTA, verify={"provider": "okta"}), OktaVerifier)


async def test_okta_chosen_but_unset_escalates_and_never_falls_back_to_duo() -> None:
    verifier = _verifier(duo=DUO, verify={"provider": "okta"})
    started = await verifier.start_push("alice@example.com", {})
    assert (started.result, started.detail) == (StartResult.NOT_ENROLLED, "Okta is not configured")
