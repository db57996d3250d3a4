"""The audit trail of AER's configuration: each org's effective settings (``aer.defaults`` with
its ``aer.orgs`` layer), and an audit-log entry whenever they differ from the last persisted."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from securitybot.aer import store
from securitybot.aer.decide import merged_org_mapping
from securitybot.config import AerConfig
from securitybot.store.alerts import audit
from securitybot.store.db import Database

SETTINGS_CHANGED = "pref.anomaly_event_response_changed"


def audit_settings_changes(db: Database, cfg: AerConfig) -> list[str]:
    """Audit every org whose effective AER settings differ from the last ones persisted."""
    changed = []
    current = effective_settings(cfg)
    with db.write() as session:
        for org, settings in current.items():
            old = store.get_snapshot(session, org)
            if old == settings:
                continue
            audit(
                session, action=SETTINGS_CHANGED, actor="config", org=org,
                details={"old": old, "new": settings},
            )  # fmt: skip
            store.put_snapshot(session, org, settings)
            changed.append(org)
    return changed


def effective_settings(cfg: AerConfig) -> dict[str, dict[str, Any]]:
    out = {"*": _plain(dict(cfg.defaults))}
    for org, layer in cfg.orgs.items():
        out[org] = _plain(merged_org_mapping(cfg.defaults, layer))
    return out


def _plain(value: Mapping[str, Any]) -> dict[str, Any]:
    # Through JSON so the comparison with the stored snapshot is like for like.
    data: dict[str, Any] = json.loads(json.dumps(value, sort_keys=True, default=str))
    return data
