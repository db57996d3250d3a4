"""The small template language of ``adapters.*``: Jinja2 expressions in a sandbox.

Templates come from the operator's config, but the values they read come from the network, so
rendering happens in an immutable sandbox (no attribute tricks, no mutation of the payload) and a
payload value is only ever data, never a template itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, TemplateError, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Rendered values end up in short alert fields; a runaway template is cut, not stored whole.
MAX_RENDERED = 10_000


class TemplateProblem(Exception):
    """A template that does not compile or cannot be rendered, phrased for a person."""


def lookup(value: Any, path: str) -> Any:
    """``get(doc, "user.name")``: a dotted path through nested objects *or* flattened keys.

    Elastic and Falco documents mix both styles (``{"user": {"name": …}}`` and
    ``{"user.name": …}``), so the longest key that exists wins at each level.
    """
    if not path:
        return value
    if isinstance(value, Mapping):
        if path in value:
            return value[path]
        parts = path.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:cut])
            if head in value:
                found = lookup(value[head], ".".join(parts[cut:]))
                if found is not None:
                    return found
        return None
    if isinstance(value, list):
        head, _, rest = path.partition(".")
        if head.isdigit() and int(head) < len(value):
            return lookup(value[int(head)], rest)
    return None


def digest(value: Any) -> str:
    """A short stable hash of any JSON value, for tools that give no id of their own."""
    canonical = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


# What tools write for "no value": Falco prints "<NA>" for a field it could not resolve.
_UNKNOWN = ("", "<NA>", "N/A", "-")


def known(*values: Any) -> Any:
    """``known(a, b, …)``: the first value that is really there (not missing, null, empty or a
    tool's "<NA>"), else empty; e.g. ``known(output_fields['user.loginname'],
    output_fields['user.name'])``."""
    for value in values:
        if value is None or isinstance(value, Undefined):
            continue
        if isinstance(value, str) and value.strip() in _UNKNOWN:
            continue
        return value
    return ""


def _finalize(value: Any) -> Any:
    # JSON null must render as nothing (Jinja would print "None"); objects as JSON, not repr.
    if value is None:
        return ""
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


_ENV = ImmutableSandboxedEnvironment(
    undefined=ChainableUndefined,  # a missing field renders empty, so `a or b` fallbacks work
    autoescape=False,
    finalize=_finalize,
)
_ENV.filters["digest"] = digest
_ENV.globals["get"] = lookup
_ENV.globals["known"] = known


@lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """Compile once; raises :class:`TemplateProblem` naming what is wrong."""
    try:
        return _ENV.from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (line {line})" if line and "\n" in source else ""
        raise TemplateProblem(f"{exc.message or exc}{where}") from None


def render(source: str, context: Mapping[str, Any]) -> str:
    """Render ``source`` against ``context``; whitespace-trimmed text, empty when nothing fits."""
    template = compile_template(source)
    try:
        text = template.render(dict(context))
    except Exception as exc:  # the sandbox raises SecurityError, TypeError, … on odd payloads
        raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    return text.strip()[:MAX_RENDERED]
