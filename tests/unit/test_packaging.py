"""What the wheel declares matches what the code imports and what the CLI reports."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from click.testing import CliRunner

from securitybot.cli import main

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    """The distribution name of a requirement, normalised as PEP 503 does."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id == "ImportError" for n in names)


def _third_party_imports(files: list[Path]) -> set[str]:
    """Distributions that ``files`` import (the standard library and the package itself aside)."""
    modules: set[str] = set()
    for path in files:
        tree = ast.parse(path.read_text())
        # An import inside `try: ... except ImportError` is optional by design (checked there).
        optional = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers)
            for stmt in node.body
            for inner in ast.walk(stmt)
        }
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    owners = packages_distributions()
    found = set()
    for module in modules - set(sys.stdlib_module_names) - {"securitybot"}:
        assert module in owners, f"{module} is imported but no installed distribution has it"
        found.update(_name(dist) for dist in owners[module])
    return found


def test_every_module_the_service_imports_is_a_declared_dependency() -> None:
    package = REPO / "securitybot"
    demo = package / "demo"
    core = [p for p in package.rglob("*.py") if demo not in p.parents]
    declared = {_name(r) for r in PROJECT["dependencies"]}
    assert _third_party_imports(core) - declared == set()
    with_demo = declared | {_name(r) for r in PROJECT["optional-dependencies"]["demo"]}
    assert _third_party_imports(list(demo.rglob("*.py"))) - with_demo == set()


def test_version_prints_the_installed_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"securitybot, version {PROJECT['version']}\n"


def test_the_demo_without_its_extra_names_the_extra_instead_of_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)  # as if not installed
    result = CliRunner().invoke(main, ["demo", "--no-browser", "--port", "0"])
    assert result.exit_code == 1
    assert "demo: missing trustme; install with: pip install 'securitybot[demo]'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_wheel_carries_the_license_text() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = " ".join((REPO / "LICENSE").read_text().split())
    assert text.startswith("Apache License Version 2.0, January 2004")
