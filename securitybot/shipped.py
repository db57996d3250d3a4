"""Data the package ships beside its code: Alembic migrations and the alert kind catalog.

Found through :mod:`importlib.resources`, so a wheel installed anywhere (a virtualenv, a
container image) finds them in its own site-packages whatever the working directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "securitybot"


def shipped_path(*parts: str) -> Path:
    """A file or folder shipped inside the package, as a path other code can open by name.

    Kinds, rules and migrations are read by path (operators point ``alerts.dir`` at a copy; Alembic
    loads its scripts from a folder), so a zipped install that has no real files is refused here
    with one line instead of failing later on a path that does not exist.
    """
    ref = resources.files(PACKAGE).joinpath(*parts)
    if not isinstance(ref, Path):
        raise RuntimeError(
            f"{PACKAGE} is installed as a zip ({ref!r}); install the wheel unpacked (pip install)"
        )
    return ref


MIGRATIONS_DIR = shipped_path("migrations")
ALERTS_DIR = shipped_path("alerts")
