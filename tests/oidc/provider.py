"""A real OpenID Connect provider for tests: panva's oidc-provider (npm, OpenID Certified) run
by Node.js from tests/oidc/provider.mjs on a free local port, with test people and groups.

`make test` (and so `.ci/run`) installs it with `npm ci` into tests/oidc/node_modules. Missing,
the tests that need it fail under CI=true and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from securitybot.demo.app import free_port
from tests.children import die_with_parent

HERE = Path(__file__).resolve().parent
CLIENT_ID = "securitybot-dashboard"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"
# Who can sign in at the test provider (any password), and their groups.
PEOPLE: dict[str, dict[str, Any]] = {
    "alice": {"email": "alice@example.com", "name": "Alice Admin", "groups": ["sec-admins"]},
    "bob": {"email": "bob@example.com", "name": "Bob Oncall", "groups": ["staff", "sec-oncall"]},
    "carol": {"email": "carol@example.com", "name": "Carol Analyst", "groups": ["sec-analysts"]},
    "dave": {"email": "dave@example.com", "name": "Dave Marketing", "groups": ["marketing"]},
}
# The dashboard's mapping of those groups (dashboard.roles); dave's group maps to nothing.
ROLES = {"admin": ["sec-admins"], "responder": ["sec-oncall"], "viewer": ["sec-analysts"]}


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"OIDC provider tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(f"OIDC provider tests skipped: {reason}")


@dataclass
class OidcProvider:
    redirect_uris: list[str]
    clock_offset: float = 0.0
    id_token_ttl: int = 300
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[str] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dashboard_config(self, redirect_url: str) -> dict[str, Any]:
        """``dashboard.oidc`` for a dashboard that signs in here."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "email", "profile", "groups"],
            "redirect_url": redirect_url,
            "roles_claim": "groups",
        }


@contextmanager
def oidc_provider(
    redirect_uris: list[str], *, clock_offset: float = 0.0, id_token_ttl: int = 300
) -> Iterator[OidcProvider]:
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed (apt-get install nodejs)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        unavailable("oidc-provider is not installed (npm ci --prefix tests/oidc)")
    provider = OidcProvider(redirect_uris, clock_offset=clock_offset, id_token_ttl=id_token_ttl)
    config = {
        "port": provider.port,
        "clock_offset": clock_offset,
        "id_token_ttl": id_token_ttl,
        "people": PEOPLE,
        "clients": [
            {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": redirect_uris,
                "token_endpoint_auth_method": "client_secret_basic",
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "provider.json"
        cfg.write_text(json.dumps(config))
        log = (Path(tmp) / "provider.log").open("w+")
        proc = subprocess.Popen(
            [str(node), str(HERE / "provider.mjs"), str(cfg)],
            cwd=HERE,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent,
        )
        provider._proc = proc
        try:
            _wait_until_serving(provider, proc, log)
            yield provider
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def _wait_until_serving(provider: OidcProvider, proc: subprocess.Popen[str], log: Any) -> None:
    url = f"{provider.issuer}/.well-known/openid-configuration"
    # Node.js loading oidc-provider takes about a second alone and far longer on a CI machine
    # busy with four test workers and their servers.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"oidc-provider exited ({proc.returncode}): {log.read()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"oidc-provider did not answer within 60 s: {log.read()}")
