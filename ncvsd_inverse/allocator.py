"""Keep freed memory in the process for reuse: the fix for solves that grew slower per pixel.

glibc's ``malloc`` serves every block above a threshold (at most 32 MB) with a fresh ``mmap`` and
returns it to the system on ``free``. torch's CPU tensors come from ``malloc``, so each network
call on a large image maps, page-faults, zeroes and unmaps its activations and workspaces anew.
On the project's 2-core CPU (issue 18) one teacher call at 1024x1024 took 19 GB of page faults
and 60 s; with freed memory kept, 0.4 GB and 31 s: the time per pixel of 256x256 again
(see ``docs/design.md``, "Speed"). The cost: memory freed during a solve stays with the process
until it exits (the peak resident size itself grew 6 % at 512x512).

The command-line tools call :func:`retain_freed_memory` at start; library users decide for their
own process. ``NCVSD_MALLOC=system`` leaves the system's allocator settings alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4


def _glibc_mallopt():
    """glibc's ``mallopt`` function, or None on another C library (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # present only in glibc
        return libc.mallopt
    except (OSError, AttributeError):
        return None


def retain_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from its heap (``M_MMAP_MAX`` 0) and never give
    freed heap memory back to the system (``M_TRIM_THRESHOLD`` -1), so that a network call reuses
    the pages of the previous one instead of faulting in new ones. Process-wide and lasting.

    Returns True when applied; False where the C library is not glibc or ``NCVSD_MALLOC=system``.
    """
    if os.environ.get("NCVSD_MALLOC", "retain") == "system":
        return False
    mallopt = _glibc_mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
