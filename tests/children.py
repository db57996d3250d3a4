"""Servers the tests start die with the test process: a killed or crashed pytest worker must
not leave `securitybot serve`, `nats-server` or `node` running and holding ports."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """For Popen's preexec_fn: the kernel sends SIGKILL when the parent goes away."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
