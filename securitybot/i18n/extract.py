"""A Babel extractor for the kind catalog (``securitybot/alerts/kinds/*.yaml``): each kind's
``title`` and ``message`` (stripped) become msgids, so ``pybabel extract`` (babel.cfg) puts
the shipped kinds' questions in the catalogs beside the code's own messages."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

import yaml


def extract_kinds(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str | None, str, list[str]]]:  # fmt: skip
    data = yaml.safe_load(fileobj.read().decode("utf-8")) or {}
    for field in ("title", "message"):
        value = data.get(field)
        if isinstance(value, str) and value.strip():
            yield 1, None, value.strip(), [f"kind {field}: keep every {{placeholder}}"]
