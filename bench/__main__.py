"""Run every benchmark and write the figures to docs/benchmarks.md.

    python -m bench            # full sizes (what `make bench` runs)
    python -m bench --quick    # small sizes, seconds: a smoke run, not figures to publish
    python -m bench hashing    # only the named modules
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

MODULES = ("harvest", "hashing", "criteria")
OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()} on {platform.system()} "
            f"{platform.machine()}, {psutil.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", choices=[[], *MODULES], default=[],
                        help=f"benchmarks to run (default: all of {', '.join(MODULES)})")
    parser.add_argument("--quick", action="store_true", help="small sizes; does not write docs/")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    # Only local emulators are measured: none of the host's AWS settings (a profile not on this
    # machine, another endpoint) may break a run or reach a real account.
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        del os.environ[name]

    sections = []
    for name in args.modules or MODULES:
        started = time.perf_counter()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        section = importlib.import_module(f"bench.{name}").run(quick=args.quick)
        print(section)
        print(f"bench: {name} took {time.perf_counter() - started:.0f} s", file=sys.stderr)
        sections.append(section.strip())
    failed = sum(section.count("FAIL") for section in sections)
    passed = sum(section.count("PASS") for section in sections)
    if args.quick:
        return 0
    header = (
        "# Benchmarks\n\n"
        f"Written by `make bench` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {machine()}.\n"
        "Each case runs in a fresh process; baselines are measured in the same run. Throughputs are\n"
        "wall-clock, peak RSS is the measured process's own high-water mark (`VmHWM`). Goals come from the issues.\n\n"
        f"**{passed} goal checks pass, {failed} fail** (search this page for FAIL).\n"
    )
    args.output.write_text(header + "\n" + "\n\n".join(sections) + "\n")
    print(f"bench: wrote {args.output}" + (f" ({failed} goal(s) FAIL)" if failed else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
