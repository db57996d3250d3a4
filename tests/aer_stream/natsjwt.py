"""Decentralised NATS auth for a test: an operator, an account with JetStream, a system
account, and a user's .creds file, signed with the `nkeys` package (no `nsc` on Debian).

The JWTs follow NATS's format (ed25519-nkey signatures over ``header.claims``, base64url);
the server is configured with ``operator`` and a MEMORY resolver preloaded with the accounts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

_UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
              "wildcards": True, "conn": -1, "leaf": -1}  # fmt: skip
_JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def _keypair(prefix: int) -> tuple[str, str, Any]:
    import nkeys

    seed = nkeys.encode_seed(os.urandom(32), prefix)
    kp = nkeys.from_seed(bytearray(seed))
    return seed.decode(), kp.public_key.decode(), kp


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(signer: Any, iss: str, sub: str, name: str, nats: dict[str, Any]) -> str:
    claims = {"iat": int(time.time()), "iss": iss, "name": name, "sub": sub, "nats": nats}
    digest = hashlib.sha256(json.dumps(claims).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims).encode())
    return f"{head}.{body}.{_b64(signer.sign(f'{head}.{body}'.encode()))}"


def _creds(user_jwt: str, seed: str) -> str:
    jwt_part = f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n"
    return f"{jwt_part}\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"


def operator_setup() -> tuple[str, str, str]:
    """(server config, a user's .creds contents, .creds of a user of an unknown account)."""
    import nkeys

    _, op_pub, op_kp = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, sys_pub, _ = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, acc_pub, acc_kp = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, stranger_pub, stranger_kp = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    op = _jwt(op_kp, op_pub, op_pub, "OP",
              {"type": "operator", "version": 2, "system_account": sys_pub})  # fmt: skip
    sys_jwt = _jwt(op_kp, op_pub, sys_pub, "SYS",
                   {"type": "account", "version": 2, "limits": _UNLIMITED})  # fmt: skip
    acc = _jwt(op_kp, op_pub, acc_pub, "AER",
               {"type": "account", "version": 2, "limits": _UNLIMITED | _JETSTREAM})  # fmt: skip
    user = {"type": "user", "version": 2, "pub": {}, "sub": {}, "subs": -1, "data": -1,
            "payload": -1}  # fmt: skip
    seed, user_pub, _ = _keypair(nkeys.PREFIX_BYTE_USER)
    other_seed, other_pub, _ = _keypair(nkeys.PREFIX_BYTE_USER)
    good = _creds(_jwt(acc_kp, acc_pub, user_pub, "aer", user), seed)
    bad = _creds(_jwt(stranger_kp, stranger_pub, other_pub, "x", user), other_seed)
    conf = (f'operator: "{op}"\nsystem_account: {sys_pub}\nresolver: MEMORY\n'
            f'resolver_preload: {{ {acc_pub}: "{acc}", {sys_pub}: "{sys_jwt}" }}\n')  # fmt: skip
    return conf, good, bad
