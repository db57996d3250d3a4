"""What the service reads by default lies inside the package, so a wheel carries it."""

from __future__ import annotations

from pathlib import Path

import securitybot
from securitybot.config import Settings
from securitybot.shipped import MIGRATIONS_DIR
from securitybot.store.db import head_revision

PACKAGE_DIR = Path(securitybot.__file__).resolve().parent


def test_every_default_data_path_is_inside_the_package() -> None:
    settings = Settings()
    defaults = [settings.alerts.dir, settings.aer.rules_path, settings.aer.tor_list]
    for path in map(Path, (p for p in defaults if p is not None)):
        assert path.exists(), path
        assert path.resolve().is_relative_to(PACKAGE_DIR), path


def test_migrations_are_found_inside_the_package() -> None:
    assert MIGRATIONS_DIR.resolve().is_relative_to(PACKAGE_DIR)
    assert head_revision() is not None
