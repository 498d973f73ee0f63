"""Peak RSS of the calling process, in MiB (the kernel counts KiB).

`ru_maxrss` is NOT usable for a child started by fork+exec (multiprocessing spawn, subprocess):
Linux carries the parent's high-water mark across exec, so a child of a big parent reports the
parent's size. `VmHWM` in /proc/self/status is the high-water mark of this process's own memory
map, reset by exec. Elsewhere fall back to `ru_maxrss`.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mib() -> float:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
