"""AER's reference data: the Tor exit list in force (from a file or the shared copy the Tor list
download publishes) and approximate country centroids for impossible-travel distances."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable
from pathlib import Path

from securitybot.aer.rules import DEFAULT_RULES_PATH

DEFAULT_TOR_PATH = DEFAULT_RULES_PATH.parent / "tor_exit_nodes.txt"  # shipped empty
EXAMPLE_TOR_PATH = DEFAULT_RULES_PATH.parent / "tor_exit_nodes.example.txt"  # tests and demos

# Approximate country centroids (lat, lon): enough to tell Berlin from Sydney when the event
# carries only a country. Events with details.lat/lon are more precise and take precedence.
COUNTRY_CENTROIDS: dict[str, tuple[float, float]] = {
    "US": (39.8, -98.6), "CA": (56.1, -106.3), "MX": (23.6, -102.6), "BR": (-14.2, -51.9),
    "AR": (-38.4, -63.6), "GB": (54.0, -2.0), "IE": (53.4, -8.2), "FR": (46.6, 2.2),
    "DE": (51.2, 10.5), "NL": (52.1, 5.3), "BE": (50.5, 4.5), "ES": (40.5, -3.7),
    "PT": (39.4, -8.2), "IT": (41.9, 12.6), "CH": (46.8, 8.2), "SE": (60.1, 18.6),
    "NO": (60.5, 8.5), "FI": (61.9, 25.7), "DK": (56.3, 9.5), "PL": (51.9, 19.1),
    "RU": (61.5, 105.3), "UA": (48.4, 31.2), "TR": (39.0, 35.2), "IL": (31.0, 34.9),
    "AE": (23.4, 53.8), "IN": (20.6, 79.0), "CN": (35.9, 104.2), "JP": (36.2, 138.3),
    "KR": (35.9, 127.8), "SG": (1.35, 103.8), "AU": (-25.3, 133.8), "NZ": (-40.9, 174.9),
    "ZA": (-30.6, 22.9), "NG": (9.1, 8.7), "EG": (26.8, 30.8),
}  # fmt: skip


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


class TorList:
    """The Tor exit set. ``version`` changes on reload so engines drop cached IP verdicts."""

    __slots__ = ("ips", "path", "version")

    def __init__(self, ips: Iterable[str] = (), path: Path | None = None) -> None:
        self.ips: frozenset[str] = frozenset(ips)
        self.path = path
        self.version = 0

    @classmethod
    def from_file(cls, path: str | Path) -> TorList:
        tor = cls(path=Path(path))
        tor.reload()
        return tor

    def reload(self) -> int:
        """Re-read the file; on error the previous list stays in force and the error propagates."""
        if self.path is None:
            raise ValueError("this TorList was not loaded from a file")
        ips: set[str] = set()
        for n, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                ips.add(str(ipaddress.ip_address(text)))
            except ValueError:
                raise ValueError(f"{self.path}:{n}: {text!r} is not an IP address") from None
        self.ips = frozenset(ips)
        self.version += 1
        return len(ips)

    def replace(self, ips: Iterable[str]) -> None:
        """Swap in a new set in one assignment; engines see the new version and re-classify."""
        self.ips = frozenset(ips)
        self.version += 1

    def __contains__(self, ip: object) -> bool:
        return ip in self.ips

    def __len__(self) -> int:
        return len(self.ips)
