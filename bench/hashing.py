"""Hashing benchmark (issue 4): the metadata Lambda's streaming digest vs the PoC's read-then-hash.

Objects of 20 MB and 200 MB (CSV shaped like the real sample) sit in a moto S3 server running in
its own process; each case runs in a fresh spawned process that gets the object through boto3
and reports its wall time and its own peak RSS, so cases cannot pollute each other.
"""

from __future__ import annotations

import multiprocessing
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).resolve().parent.parent / "local" / "snapshot" / "source" / "gt2j-8ykr-sample.csv"
BUCKET = "bench-hashing"
MB = 10**6
MIB = 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _csv_bytes(size: int) -> bytes:
    """`size` bytes of CSV: the sample's header, then its rows repeated (with quoted newlines)."""
    if SAMPLE.exists():
        lines = SAMPLE.read_bytes().splitlines(keepends=True)
    else:  # the bundled sample is missing (a partial checkout); any CSV-shaped body measures the same code
        lines = [b"a,b,c\n"] + [b'%d,"x\ny",z\n' % i for i in range(100)]
    header, body = lines[0], b"".join(lines[1:])
    data = header + body * (size // len(body) + 1)
    return data[:data.rfind(b"\n", 0, size) + 1]


def _client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def _case(kind: str, endpoint: str, key: str, out) -> None:
    """Runs in a fresh process: fetch + hash the object one way, report time and peak RSS."""
    import hashlib

    sys.path.insert(0, str(ROOT))
    sys.modules["numpy"] = None  # type: ignore[assignment]  # as in the Lambda: its record count without numpy
    from bench.peakrss import peak_rss_mib
    from handlers.digest import CHUNK_SIZE, digest_chunks

    s3 = _client(endpoint)
    s3.head_bucket(Bucket=BUCKET)  # connection and imports out of the timed part
    started = time.perf_counter()
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
    if kind == "streaming":
        digest = digest_chunks(body.iter_chunks(chunk_size=CHUNK_SIZE)).sha256
    else:  # the PoC: the whole body in memory, then hash
        digest = hashlib.sha256(body.read()).hexdigest()
    elapsed = time.perf_counter() - started
    out.put((elapsed, peak_rss_mib(), digest))


def _measure(kind: str, endpoint: str, key: str) -> tuple[float, float, str]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=_case, args=(kind, endpoint, key, out))
    process.start()
    result = out.get(timeout=600)
    process.join()
    return result


def run(quick: bool = False) -> str:
    sizes = (2 * MB, 8 * MB) if quick else (20 * MB, 200 * MB)
    repeats = 1 if quick else 3
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from moto.server import ThreadedMotoServer; "
         f"ThreadedMotoServer(ip_address='127.0.0.1', port={port}).start(); time.sleep(10**6)"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        s3 = _client(endpoint)
        for _ in range(100):
            try:
                s3.create_bucket(Bucket=BUCKET)
                break
            except Exception:  # server still starting
                time.sleep(0.1)
        results: dict[tuple[str, int], tuple[float, float]] = {}
        for size in sizes:
            data = _csv_bytes(size)
            key = f"{size}.csv"
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
            import hashlib
            expected = hashlib.sha256(data).hexdigest()
            del data
            for kind in ("streaming", "poc"):
                runs = []
                for _ in range(repeats):
                    elapsed, rss, digest = _measure(kind, endpoint, key)
                    assert digest == expected, f"{kind} digest differs from hashlib's"
                    runs.append((elapsed, rss))
                results[(kind, size)] = (min(r[0] for r in runs), max(r[1] for r in runs))
    finally:
        server.terminate()
        server.wait()
    return _section(sizes, results, repeats)


def _section(sizes, results, repeats) -> str:
    small, large = sizes
    lines = [
        "## Hashing: metadata Lambda vs the PoC (S3 get + SHA-256)",
        "",
        f"moto S3 server in its own process; each case in a fresh process; best time of {repeats}, "
        "highest peak RSS (the case process's own `VmHWM`). Streaming = `handlers.digest` over `Body.iter_chunks(1 MiB)` (SHA-256 + "
        "size + CSV record count in one pass; without numpy, which the Lambda package lacks); PoC = `Body.read()` then `hashlib.sha256`.",
        "",
        "| object | approach | time (s) | throughput (MB/s) | peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for size in sizes:
        for kind, label in (("streaming", "streaming (handler)"), ("poc", "read then hash (PoC)")):
            elapsed, rss = results[(kind, size)]
            lines.append(f"| {size / MB:.0f} MB | {label} | {elapsed:.2f} | {size / MB / elapsed:.0f} | {rss:.0f} |")
    speed = (large / results[("streaming", large)][0]) / (large / results[("poc", large)][0])
    # Peaks are measured in MiB; the goals are in MB.
    rss_small, rss_large = (results[("streaming", s)][1] * MIB / MB for s in (small, large))
    growth = rss_large - rss_small
    poc_growth = (results[("poc", large)][1] - results[("poc", small)][1]) * MIB / MB
    goals = [
        (f"speed >= 0.9x the PoC ({large / MB:.0f} MB)", f"{speed:.2f}x", speed >= 0.9),
        ("peak RSS < 100 MB", f"{max(rss_small, rss_large):.0f} MB", max(rss_small, rss_large) < 100),
        (f"RSS flat from {small / MB:.0f} to {large / MB:.0f} MB (growth < 10 MB)",
         f"{growth:+.1f} MB (PoC {poc_growth:+.1f} MB)", growth < 10),
    ]
    lines += ["", "| goal | measured | result |", "|---|---|---|"]
    lines += [f"| {goal} | {measured} | {'PASS' if ok else 'FAIL'} |" for goal, measured, ok in goals]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
