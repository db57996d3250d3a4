"""The adapters' names, for the configuration to check `adapters.<name>` against without
importing the adapters (which import the configuration's types). The registry checks that
this list and its adapters agree."""

from __future__ import annotations

ADAPTER_NAMES = (
    "alertmanager",
    "elastalert",
    "falco",
    "grafana",
    "kibana",
    "osquery",
    "splunk",
    "wazuh",
)
