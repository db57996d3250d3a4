"""The known adapters, and which templates apply to a given adapter and source."""

from __future__ import annotations

from collections.abc import Mapping

from securitybot.config import AdapterConfig, AdapterTemplates
from securitybot.ingest.adapters.base import TEMPLATE_FIELDS, Adapter
from securitybot.ingest.adapters.elastic import ElastAlert, Kibana
from securitybot.ingest.adapters.falco import Falco
from securitybot.ingest.adapters.osquery import Osquery
from securitybot.ingest.adapters.prometheus import Alertmanager, Grafana
from securitybot.ingest.adapters.splunk import Splunk
from securitybot.ingest.adapters.wazuh import Wazuh

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        Alertmanager(),
        Grafana(),
        Splunk(),
        ElastAlert(),
        Kibana(),
        Falco(),
        Osquery(),
        Wazuh(),
    )
}

# Tools that cannot send headers: Splunk's webhook action and Falco's own http_output (it has
# TLS and mTLS options but no header one). A token in the URL ends up in proxy and tool logs,
# so this weaker option is limited to them; our own log lines redact it (logs.RedactQueryTokens).
QUERY_TOKEN_ADAPTERS = frozenset({"splunk", "falco"})


def names() -> list[str]:
    return sorted(ADAPTERS)


def templates_for(adapter: str, source: str, config: Mapping[str, AdapterConfig]) -> dict[str, str]:
    """Built-in defaults, overridden by ``adapters.<adapter>``, then by its ``sources.<source>``."""
    chosen = dict(ADAPTERS[adapter].defaults)
    layer = config.get(adapter)
    if layer is not None:
        layers: list[AdapterTemplates] = [layer]
        if source in layer.sources:
            layers.append(layer.sources[source])
        for one in layers:
            for field in TEMPLATE_FIELDS:
                value = getattr(one, field)
                if value is not None:
                    chosen[field] = value
    return chosen
