"""Memory: how the job's processes allocate, how much the machine has, and how many aggregates fit.

A day's memory grows with its distinct aggregates (one row of the output
per activity date and combination of dimension values), not with its pings.
``default_max_aggregates`` sizes the guard on them (``aggregate.check_limit``)
from the machine's memory and the measured cost of one aggregate.
"""

from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h

#: Peak memory of ``run --workers 2`` per distinct aggregate, over what the
#: same run takes for few aggregates, with the default dimensions and stats:
#: ~1.2 KB measured on the benchmark's 400,000-aggregate day (``make bench``,
#: corpus ``distinct`` against ``few-aggregates``), rounded up for other
#: configurations and allocators.
BYTES_PER_AGGREGATE = 1500
#: Share of the machine's memory that the default limit lets a day's aggregates take.
MEMORY_SHARE = 0.5
#: Where the cgroup (v2, then v1) of a container says how much memory it may use.
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _mallopt(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None).mallopt(option, value)
    except (OSError, AttributeError):  # not glibc
        pass


def keep_freed_memory() -> None:
    """Have glibc's malloc keep freed memory for reuse (elsewhere: nothing): for reading.

    By default glibc returns big freed blocks to the kernel and moves its
    thresholds with the sizes it sees; the decompressed blocks of gzip and
    zstd input (a new bytes object each, of varying sizes) then page-fault
    in afresh: a third of the time spent reading gzip input. With blocks
    above 4 MB mapped and up to 32 MB kept free at the top of the heap, that
    time goes (the process holds at most those 32 MB more).
    """
    _mallopt(_M_MMAP_THRESHOLD, 4 << 20)
    _mallopt(_M_TRIM_THRESHOLD, 32 << 20)


def return_freed_memory(arrow: bool = False) -> None:
    """Have freed memory go back to the system at once: for merging and for building a partition's table.

    Blocks of 1 MiB and more are mapped on their own and unmapped when freed
    (glibc would otherwise raise that threshold to the largest block freed,
    and keep the heap it left). ``arrow``: Arrow allocates from glibc too
    (this imports pyarrow), instead of its own allocator, which keeps what
    it frees. On a day of 400,000 aggregates the table's temporaries were
    then no longer held on top of the table: a peak 80 MB lower.
    """
    _mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    _mallopt(_M_TRIM_THRESHOLD, 128 << 10)  # glibc's default
    if arrow:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())


def total_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its container's limit if lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30  # (no sysconf: a modest machine)
    for path in _CGROUP_LIMITS:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
        break
    return total


def default_max_aggregates(memory: int | None = None) -> int:
    """The default limit on a day's distinct aggregates: ``MEMORY_SHARE`` of the memory at ``BYTES_PER_AGGREGATE`` each.

    >>> default_max_aggregates(24 << 30)
    8589934
    """
    memory = total_memory() if memory is None else memory
    return max(1, int(memory * MEMORY_SHARE // BYTES_PER_AGGREGATE))
