"""The Tor Project's bulk exit list: download, validate, and publish it to every process.

``https://check.torproject.org/torbulkexitlist`` is plain text, one exit IP per line. A captive
portal, an error page or a truncated download must never replace a good list, so the whole body
is checked first (every non-blank line an IP address, a sane number of them); only then is it
stored, in one row update with a version bump, which running processes see within seconds
(:meth:`AerService.sync`). A refused download leaves the previous list in force.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import httpx

from securitybot.aer import shared
from securitybot.store.db import Database

MAX_BYTES = 8 << 20


class TorListError(ValueError):
    """The download was refused; the message says why (the old list stays)."""


@dataclass(frozen=True)
class TorUpdate:
    entries: int
    added: int
    removed: int
    version: int


def parse_exit_list(text: str, *, min_entries: int, max_entries: int) -> frozenset[str]:
    ips: set[str] = set()
    for n, line in enumerate(text.splitlines(), 1):
        item = line.strip()
        if not item:
            continue
        try:
            addr = ipaddress.ip_address(item)
        except ValueError:
            raise TorListError(f"line {n}: {item[:60]!r} is not an IP address") from None
        mapped = getattr(addr, "ipv4_mapped", None)  # the spelling events are normalised to
        ips.add(str(mapped or addr))
    if not min_entries <= len(ips) <= max_entries:
        raise TorListError(
            f"{len(ips)} addresses; expected between {min_entries} and {max_entries}"
        )
    return frozenset(ips)


def download(url: str, timeout: float) -> str:
    try:
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            resp = client.get(url, headers={"Accept": "text/plain"})
    except httpx.HTTPError as exc:
        raise TorListError(f"cannot download {url}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise TorListError(f"{url} answered HTTP {resp.status_code}")
    if len(resp.content) > MAX_BYTES:
        raise TorListError(f"{url} sent {len(resp.content):,} bytes; the limit is {MAX_BYTES:,}")
    return resp.text


def update_tor_list(
    db: Database, url: str, *, min_entries: int, max_entries: int, timeout: float = 30.0
) -> TorUpdate:
    """Download, validate and publish; raises :class:`TorListError` and changes nothing."""
    ips = parse_exit_list(download(url, timeout), min_entries=min_entries, max_entries=max_entries)
    with db.write() as session:
        row = shared.threat_list(session, shared.TOR_LIST)
        old = frozenset(row.entries) if row is not None else frozenset()
        shared.save_threat_list(session, shared.TOR_LIST, ips, url)
        if row is not None and old == ips:
            # Same list: every process already holds it, so no reload is triggered.
            version = shared.versions(session).get(shared.TOR_LIST, 0)
        else:
            version = shared.bump(session, shared.TOR_LIST)
    return TorUpdate(len(ips), len(ips - old), len(old - ips), version)
