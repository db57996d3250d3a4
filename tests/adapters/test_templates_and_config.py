"""The template language, per-source overrides, and start-up validation of ``adapters``."""

from __future__ import annotations

from pathlib import Path

import pytest

from securitybot.config import ConfigError, load_config
from securitybot.ingest.adapters import registry
from securitybot.ingest.adapters.base import Item
from securitybot.ingest.adapters.mapping import MappingError, Resolved, map_item
from securitybot.ingest.adapters.templates import TemplateProblem, lookup, render
from securitybot.ingest.schema import AlertIn
from tests.adapters.conftest import sample


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    load_config(path)


def test_a_template_that_does_not_compile_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, "adapters:\n  splunk:\n    user: '{{ result.user '\n")
    message = str(exc.value)
    assert message.startswith("config error: adapters.splunk.user: template does not compile")
    assert "\n" not in message


def test_a_broken_per_source_template_is_named_down_to_the_source(tmp_path: Path) -> None:
    text = (
        "ingest:\n  tokens: [{source: k8s, token: k8s-token-0123456789}]\n"
        "adapters:\n  falco:\n    sources:\n      k8s:\n        title: '{% if %}'\n"
    )
    with pytest.raises(ConfigError, match=r"^config error: adapters\.falco\.sources\.k8s\.title: "):
        _load(tmp_path, text)


def test_an_unknown_adapter_or_source_in_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown adapter 'splnk'"):
        _load(tmp_path, "adapters:\n  splnk:\n    user: x\n")
    with pytest.raises(ConfigError, match=r"'nobody' is not a source in ingest\.tokens"):
        _load(tmp_path, "adapters:\n  falco:\n    sources:\n      nobody: {user: x}\n")


def test_source_templates_override_adapter_templates_which_override_defaults(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "ingest:\n  tokens: [{source: team-a, token: team-a-token-0123456789}]\n"
        "adapters:\n  splunk:\n    title: 'adapter {{ search_name }}'\n"
        "    kind: sensitive_command\n"
        "    sources:\n      team-a: {title: 'team a {{ search_name }}'}\n"
    )
    cfg = load_config(path).adapters
    team_a = registry.templates_for("splunk", "team-a", cfg)
    other = registry.templates_for("splunk", "other", cfg)
    assert team_a["title"] == "team a {{ search_name }}"
    assert other["title"] == "adapter {{ search_name }}"
    assert team_a["kind"] == other["kind"] == "sensitive_command"
    assert team_a["user"] == registry.ADAPTERS["splunk"].defaults["user"]


def test_missing_fields_and_nulls_render_empty_so_fallbacks_work() -> None:
    ctx = {"labels": {"user": None}, "annotations": {}}
    assert render("{{ labels.user or annotations.user or 'fallback' }}", ctx) == "fallback"
    assert render("{{ nothing.at.all }}", ctx) == ""


def test_get_follows_nested_and_flattened_dotted_keys() -> None:
    doc = {"kibana.alert": {"rule": {"name": "r"}}, "user": {"name": "alice"}, "a.b": 1}
    assert lookup(doc, "kibana.alert.rule.name") == "r"
    assert lookup(doc, "user.name") == "alice"
    assert lookup(doc, "a.b") == 1
    assert lookup(doc, "user.missing") is None
    assert render("{{ get(doc, 'user.name') }}", {"doc": doc}) == "alice"


def test_templates_run_in_a_sandbox() -> None:
    with pytest.raises(TemplateProblem, match="SecurityError: access to attribute '__class__'"):
        render("{{ ''.__class__.__mro__[1].__subclasses__() }}", {})
    assert render("{{ ''.__class__ }}", {}) == ""
    with pytest.raises(TemplateProblem, match="SecurityError"):
        render("{{ items.append(1) }}", {"items": []})


def test_payload_values_are_data_never_templates() -> None:
    item = Item(
        context={"labels": {"user": "a@example.com"}, "annotations": {"summary": "{{ 7*7 }}"}}
    )
    mapped = map_item("alertmanager", item, registry.templates_for("alertmanager", "s", {}))
    assert isinstance(mapped, AlertIn) and mapped.title == "{{ 7*7 }}"


def test_a_tool_specific_kind_name_is_normalised_or_kept_aside() -> None:
    templates = {
        **registry.templates_for("alertmanager", "s", {}),
        "kind": "{{ labels.alertname }}",
    }
    base = {"user": "a@example.com"}
    upper = Item(context={"labels": {**base, "alertname": "SSH-Key-Added"}})
    weird = Item(context={"labels": {**base, "alertname": "9 lives"}})
    first, second = (map_item("alertmanager", i, templates) for i in (upper, weird))
    assert isinstance(first, AlertIn) and first.kind == "ssh_key_added"
    assert isinstance(second, AlertIn) and second.kind is None
    assert second.details["requested_kind"] == "9 lives"


def test_an_overlong_tool_id_becomes_a_stable_dedup_key() -> None:
    item = Item(
        context={"labels": {"user": "a@example.com", "alertname": "x"}, "fingerprint": "f" * 500}
    )
    templates = registry.templates_for("alertmanager", "s", {})
    one, two = map_item("alertmanager", item, templates), map_item("alertmanager", item, templates)
    assert isinstance(one, AlertIn) and isinstance(two, AlertIn)
    assert one.dedup_key == two.dedup_key and one.dedup_key is not None
    assert len(one.dedup_key) <= 200


def test_a_template_error_on_one_item_is_a_reason_not_a_crash() -> None:
    templates = {**registry.templates_for("splunk", "s", {}), "title": "{{ result.count // 0 }}"}
    [item] = registry.ADAPTERS["splunk"].items({**sample("splunk"), "result": {"count": 3}})
    with pytest.raises(MappingError, match=r"^title: the template adapters\.splunk\.title failed"):
        map_item("splunk", item, templates)


_SAMPLE_OVERRIDES = {
    "falco": {"user": "{{ output_fields['user.loginname'] ~ '@example.com' }}"},
    "wazuh": {"user": "{{ data.dstuser ~ '@example.com' }}"},
}


def _map_sample(name: str) -> list[AlertIn | Resolved]:
    """Every item of the adapter's sample, mapped: a MappingError on any item fails the test
    (it used to be skipped, so one good item hid the others)."""
    templates = {**registry.templates_for(name, "falco-k8s", {}), **_SAMPLE_OVERRIDES.get(name, {})}
    items = registry.ADAPTERS[name].items(sample(name))
    assert items, f"the {name} sample has no items"
    return [map_item(name, item, templates) for item in items]


@pytest.mark.parametrize("name", registry.names())
def test_every_item_of_every_adapters_sample_maps(name: str) -> None:
    results = _map_sample(name)
    assert any(isinstance(r, AlertIn) for r in results)
    for result in results:
        if isinstance(result, AlertIn):
            assert result.title and result.dedup_key, result
        else:
            assert isinstance(result, Resolved) and result.dedup_key, result


def test_one_item_that_does_not_map_fails_the_sample_check(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = registry.ADAPTERS["alertmanager"]
    real = adapter.items

    def with_a_bad_item(payload: object) -> list[Item]:
        items = list(real(payload))
        return [*items, Item(context={}, error="no labels in this alert")]

    monkeypatch.setattr(adapter, "items", with_a_bad_item)
    with pytest.raises(MappingError, match="no labels"):
        _map_sample("alertmanager")
