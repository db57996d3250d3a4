"""Validation of a downloaded Tor bulk exit list (plain text, one IP per line)."""

from __future__ import annotations

import pytest

from securitybot.aer.torlist import TorListError, parse_exit_list


def test_a_list_of_addresses_is_accepted_in_the_spelling_events_use() -> None:
    text = "192.0.2.1\n\n2001:db8::1\n::ffff:198.51.100.9\n192.0.2.1\n"
    ips = parse_exit_list(text, min_entries=1, max_entries=10)
    assert ips == {"192.0.2.1", "2001:db8::1", "198.51.100.9"}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("<!DOCTYPE html>\n<title>Login</title>", "line 1: '<!DOCTYPE html>' is not an IP"),
        ("192.0.2.1\n192.0.2.999\n", "line 2"),
        ("192.0.2.1 # exit\n", "is not an IP address"),
        ("", "0 addresses; expected between 1 and 10"),
        ("\n".join(f"192.0.2.{i}" for i in range(1, 12)), "11 addresses"),
    ],
)
def test_anything_else_is_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(TorListError, match=why):
        parse_exit_list(text, min_entries=1, max_entries=10)
