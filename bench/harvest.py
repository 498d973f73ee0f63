"""Harvester benchmark: one generated dataset of ~20 MB and ~200 MB, served by local/portal.py in
its own process, stored into a moto S3 server in its own process.

Measured, each in a fresh process: the real job (`container/main.py`, DATASET_IDS=that dataset)
and the baseline, a raw streamed copy of the same bytes (`requests` stream of the whole CSV in one
response into `boto3 upload_fileobj`). Throughput is the dataset's bytes over the time the process
spent on that dataset (the job's own per-dataset `seconds`; the baseline's timed copy). Both
exclude the same things: Python start-up, imports and boto3 client creation (the job's clients
and portal session are made once per job, before its datasets; the baseline's client before its
clock starts). Both include their first S3 connection. The portal connection differs: the job
opens its first one during the inventory read, before its per-dataset clock starts; the baseline
opens its only one inside its clock (a TCP connect over loopback: well under a millisecond). The
job's time also holds what the baseline does not do: the metadata request, one request per page,
the checks of every page, the tags `rows` and `announced` and the SQS message.

Peak RSS is the measured process's own high-water mark, `VmHWM` (bench/peakrss.py), which each
measured child writes to stderr at exit (an atexit hook registered before its code runs; the job
runs as `__main__` through runpy, as `python container/main.py` would). Not `ru_maxrss` from os.wait4:
Linux carries the parent's high-water mark across exec, so after `python -m bench hashing harvest`
every figure would show the hashing run's size. The servers' memory is not counted either. The
job runs with the harvester's defaults: its tuning variables (contract.JobEnv) are dropped from the
inherited environment.

Where the small dataset's time goes is shown by one extra traced run of each side (botocore
event hooks and wrappers record each step; not part of the medians).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BUCKET = "bench-harvest"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
# Each case runs this many times, alternating harvester and baseline; medians reported. Single
# 20 MB pairs spread from 0.7x to 1.0x on this machine: a median of 5 moved by 0.08 between
# full runs of the same code, so 9.
REPEATS = 9
GOAL_SPEED = 0.8  # x the baseline's throughput
GOAL_RSS_MB = 150  # the goals are in MB; peaks are measured in MiB
GOAL_GROWTH_MB = 20


def _rows(target_bytes: int):
    """Rows of about 200 bytes with quotes, commas, accents and a newline now and then."""
    i = 0
    size = 0
    while size < target_bytes:
        note = f'Observación {i}: "Peña", Nariño, línea {i % 97}' + ("\nsegunda línea" if i % 50 == 0 else "")
        row = [str(i + 1), "BOGOTÁ, D.C.", f"{(i * 7919) % 100000 / 7:.4f}", note, "" if i % 3 else str(i % 11),
               f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T00:00:00.000", "x" * 60]
        size += sum(len(v) for v in row) + 2 * len(row) + len(row) + 10
        i += 1
        yield row


def _serve_portal(sizes: dict[str, int], ready) -> None:
    sys.path.insert(0, str(ROOT))
    from local.portal import Dataset, GENERATED_COLUMNS, Portal, PortalServer, inventory_row, view_metadata

    portal = Portal()
    columns = [*GENERATED_COLUMNS, ("Relleno", "relleno", "text", "Texto de relleno.")]
    for dataset_id, size in sizes.items():
        meta = view_metadata(dataset_id, f"Benchmark {dataset_id}", columns=columns, description="GENERATED")
        dataset = Dataset.from_rows(dataset_id, meta, [c[1] for c in columns], _rows(size))
        portal.add(dataset, inventory_row(dataset))
    with PortalServer(portal) as server:
        ready.put((server.url, {d.id: len(d.data) for d in portal.datasets.values()}))
        time.sleep(10**6)


def _serve_moto(ready) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    ready.put(f"http://{host}:{port}")
    time.sleep(10**6)


# Put before every measured child's code: at exit the child writes its own peak RSS (VmHWM) as a
# stderr line starting with PEAK_MARK; _measure takes the last such line.
PEAK_MARK = "bench-peak-rss-mib "
REPORT_PEAK = f"""
import atexit as _atexit, sys as _sys
_sys.path.insert(0, {str(ROOT)!r})
from bench.peakrss import peak_rss_mib as _peak_rss_mib
del _sys.path[0]
def _report_peak(peak=_peak_rss_mib, stderr=_sys.stderr):
    print(f"{PEAK_MARK}{{peak():.3f}}", file=stderr, flush=True)
_atexit.register(_report_peak)
"""

# The job as `python container/main.py` runs it (the script's folder first on sys.path, run as
# __main__; its sys.exit is the process's exit status), after REPORT_PEAK.
RUN_JOB = r"""
import os, runpy, sys
script = os.path.join(os.getcwd(), "container", "main.py")
sys.argv = [script]
sys.path[0] = os.path.dirname(script)
runpy.run_path(script, run_name="__main__")
"""

BASELINE = r"""
import json, sys, time
import boto3, requests
url, bucket, key = sys.argv[1:4]
s3 = boto3.client("s3")
started = time.perf_counter()
with requests.get(url, params={"$order": ":id", "$limit": "100000000"}, stream=True, timeout=60) as response:
    response.raise_for_status()
    s3.upload_fileobj(response.raw, bucket, key)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "size": s3.head_object(Bucket=bucket, Key=key)["ContentLength"]}))
"""


# The job, with each step of its one dataset timed. Wrappers and botocore hooks only record; a
# stdout line {"steps": {label: [calls, ms, first start]}, "seconds": dataset seconds} comes
# before the summary.
TRACED_HARVESTER = r"""
import json, sys, threading, time
from collections import defaultdict
sys.argv = ["container/main.py"]
import container.csv_pages as csv_pages, container.harvest as harvest, container.main as main
from container.portal_client import PortalClient
from container.upload import StreamingUpload
steps = defaultdict(lambda: [0, 0.0, 0.0])  # calls, ms, first start (orders the table)
def record(label, started):
    step = steps[label]
    step[0] += 1
    step[1] += (time.perf_counter() - started) * 1000
    step[2] = step[2] or started
def timed(owner, name, label):
    function = getattr(owner, name)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            record(label, started)
    setattr(owner, name, wrapper)
timed(PortalClient, "metadata", "metadata request")
timed(harvest, "copy_page", "page bodies: streamed, checked, into part buffers")
timed(csv_pages, "check_sample", "  of which the strict csv check")
timed(StreamingUpload, "complete", "complete: last parts, CompleteMultipartUpload")
timed(harvest, "announce", "announce: SendMessage, tag rows and announced")
open_csv_page = PortalClient.open_csv_page
def first_byte(self, *args, **kwargs):
    started = time.perf_counter()
    try:
        return open_csv_page(self, *args, **kwargs)
    finally:
        ahead = threading.current_thread().name.startswith("next-page")
        record("  later pages, to the first byte (asked for ahead)" if ahead
               else "first page request, to the first byte", started)
PortalClient.open_csv_page = first_byte
clients = main.aws_clients
def traced_clients(settings):
    made = clients(settings)
    for client in made:
        def before(context, **kwargs):
            context["started"] = time.perf_counter()
        def after(model, context, **kwargs):
            if threading.current_thread().name.startswith("part"):
                record(f"  {model.name} (part threads)", context["started"])
            else:
                record(f"  {model.name}", context["started"])
        client.meta.events.register("before-call", before)
        client.meta.events.register("after-call", after)
    return made
main.aws_clients = traced_clients
run = harvest.run
def traced_run(*args):
    summary = run(*args)
    print(json.dumps({"steps": steps, "seconds": summary.outcomes[-1].seconds}))
    return summary
main.run = traced_run
main.main()
"""

# The baseline, traced the same way.
TRACED_BASELINE = r"""
import json, sys, time, threading
from collections import defaultdict
import boto3, requests
url, bucket, key = sys.argv[1:4]
steps = defaultdict(lambda: [0, 0.0, 0.0])  # calls, ms, first start (orders the table)
s3 = boto3.client("s3")
def before(context, **kwargs):
    context["started"] = time.perf_counter()
def after(model, context, **kwargs):
    label = f"  {model.name}" + ("" if threading.current_thread() is threading.main_thread() else " (worker threads)")
    step = steps[label]
    step[0] += 1
    step[1] += (time.perf_counter() - context["started"]) * 1000
    step[2] = step[2] or context["started"]
s3.meta.events.register("before-call", before)
s3.meta.events.register("after-call", after)
started = time.perf_counter()
with requests.get(url, params={"$order": ":id", "$limit": "100000000"}, stream=True, timeout=60) as response:
    steps["one request, to the first byte"] = [1, (time.perf_counter() - started) * 1000, started]
    response.raise_for_status()
    copy = time.perf_counter()
    s3.upload_fileobj(response.raw, bucket, key)
    steps["upload_fileobj: body read, parts, CompleteMultipartUpload"] = [1, (time.perf_counter() - copy) * 1000, copy]
print(json.dumps({"steps": steps, "seconds": time.perf_counter() - started}))
"""


@dataclass
class Measure:
    seconds: float
    size: int
    rss_mib: float

    @property
    def mb_per_s(self) -> float:
        return self.size / 1e6 / self.seconds


def _median(measures) -> Measure:
    """The run with the median time; its RSS is the highest of all runs (the goal is a ceiling)."""
    ordered = sorted(measures, key=lambda m: m.seconds)
    middle = ordered[len(ordered) // 2]
    return Measure(middle.seconds, middle.size, max(m.rss_mib for m in ordered))


def _measure(label: str, code: str, args: list[str], env: dict) -> tuple[str, float]:
    """Runs `code` in a fresh `python -c` process (cwd ROOT); (stdout, its own peak RSS in MiB).

    The peak is the child's VmHWM, which REPORT_PEAK writes to stderr at exit (see the module
    docstring for why not ru_maxrss); stderr goes to a temporary file so no pipe fills."""
    with tempfile.TemporaryFile() as errors:
        result = subprocess.run([sys.executable, "-c", REPORT_PEAK + code, *args], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=errors)
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if result.returncode != 0:
        raise RuntimeError(f"{label} exited {result.returncode}: {stderr[-3000:]}")
    peaks = [line for line in stderr.splitlines() if line.startswith(PEAK_MARK)]
    if not peaks:
        raise RuntimeError(f"{label} did not report its peak RSS: {stderr[-3000:]}")
    return result.stdout.decode(), float(peaks[-1][len(PEAK_MARK):])


def _harvester(env: dict, dataset_id: str) -> Measure:
    stdout, rss = _measure("container/main.py", RUN_JOB, [], {**env, "DATASET_IDS": dataset_id, "FORCE": "true"})
    summary = json.loads(stdout.strip().splitlines()[-1])["summary"]
    [outcome] = summary["datasets"]
    if outcome["status"] != "harvested":
        raise RuntimeError(f"harvest failed: {outcome}")
    return Measure(outcome["seconds"], outcome["size"], rss)


def _baseline(env: dict, portal_url: str, dataset_id: str) -> Measure:
    stdout, rss = _measure("the baseline", BASELINE, [f"{portal_url}/resource/{dataset_id}.csv", BUCKET,
                                                      f"baseline/{dataset_id}.csv"], env)
    result = json.loads(stdout)
    return Measure(result["seconds"], result["size"], rss)


def _breakdown(env: dict, portal_url: str, dataset_id: str) -> tuple[dict, dict]:
    """One traced run of each side: ({"steps": ..., "seconds": ...}, the same for the baseline)."""
    harvester, _ = _measure("the traced job", TRACED_HARVESTER, [], {**env, "DATASET_IDS": dataset_id, "FORCE": "true"})
    baseline, _ = _measure("the traced baseline", TRACED_BASELINE, [f"{portal_url}/resource/{dataset_id}.csv", BUCKET,
                                                                     f"baseline/{dataset_id}.csv"], env)
    [steps] = [line for line in harvester.splitlines() if line.startswith('{"steps"')]
    return json.loads(steps), json.loads(baseline)


def run(quick: bool = False) -> str:
    import boto3

    sizes = {"benc-0020": 2 * MIB, "benc-0200": 12 * MIB} if quick else {"benc-0020": 20 * MIB, "benc-0200": 200 * MIB}
    repeats = 1 if quick else REPEATS
    context = multiprocessing.get_context("spawn")
    portal_ready, moto_ready = context.Queue(), context.Queue()
    portal = context.Process(target=_serve_portal, args=(sizes, portal_ready), daemon=True)
    moto = context.Process(target=_serve_moto, args=(moto_ready,), daemon=True)
    portal.start()
    moto.start()
    try:
        portal_url, actual = portal_ready.get(timeout=600)
        endpoint = moto_ready.get(timeout=60)
        # The job's defaults are what is measured: no AWS_* and no harvester setting (a PAGE_SIZE or
        # PART_SIZE_MIB in the shell) comes from the caller's environment.
        settings = set(_job_settings()["names"])
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in settings}
        env.update(CREDENTIALS)
        env.update({"AWS_ENDPOINT_URL": endpoint, "BUCKET": BUCKET, "SODA_DOMAIN": portal_url, "LOG_LEVEL": "WARNING",
                    "QUEUE_URL": ""})
        aws = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                   aws_secret_access_key="bench")
        boto3.client("s3", **aws).create_bucket(Bucket=BUCKET)
        env["QUEUE_URL"] = boto3.client("sqs", **aws).create_queue(QueueName="bench")["QueueUrl"]
        results = {}
        for dataset_id in sizes:
            runs = [(_harvester(env, dataset_id), _baseline(env, portal_url, dataset_id)) for _ in range(repeats)]
            results[dataset_id] = (_median(r[0] for r in runs), _median(r[1] for r in runs),
                                   [baseline.seconds / harvester.seconds for harvester, baseline in runs])
        small = next(iter(sizes))
        breakdown = (small, *_breakdown(env, portal_url, small))
    finally:
        portal.terminate()
        moto.terminate()
        portal.join()
        moto.join()
    return _report(results, quick, breakdown)


def _job_settings() -> dict:
    """The harvester's environment names and the defaults the measured job runs with."""
    if str(ROOT) not in sys.path:  # `python bench/harvest.py`
        sys.path.insert(0, str(ROOT))
    from container.upload import MAX_IN_FLIGHT
    from contract import JobDefaults, JobEnv

    return {"names": [v for k, v in vars(JobEnv).items() if not k.startswith("_") and isinstance(v, str)],
            "page_size": JobDefaults.PAGE_SIZE, "part_mib": JobDefaults.PART_SIZE_MIB,
            "in_flight": MAX_IN_FLIGHT}


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _steps_table(title: str, traced: dict) -> list[str]:
    total = traced["seconds"] * 1000
    lines = [f"| {title} | calls | ms | share |", "|---|---|---|---|"]
    for label, (calls, ms, _) in sorted(traced["steps"].items(), key=lambda item: item[1][2]):
        lines.append(f"| {label.replace('  ', '&nbsp;&nbsp;')} | {calls} | {ms:.0f} | {ms / total:.0%} |")
    return [*lines, f"| **the dataset, end to end** | | **{total:.0f}** | |"]


def _report(results: dict[str, tuple[Measure, Measure, list[float]]], quick: bool,
            breakdown: tuple[str, dict, dict]) -> str:
    from bench.__main__ import machine

    job = _job_settings()
    lines = ["## Harvester: one dataset from the portal into S3 (issue 3)", "",
             "Local portal (`local/portal.py`) and moto S3 server each in their own process; the job's defaults: "
             f"pages of {job['page_size']} rows, {job['part_mib']} MiB parts, {job['in_flight']} in flight. "
             f"Median of {1 if quick else REPEATS} alternating runs (peak RSS: the highest run, the process's own "
             "`VmHWM`); the ratio is the medians'. Each pair's ratio (a harvester run and the baseline run right "
             f"after it) shows the spread: on this machine ({machine()}) the two servers and the measured process "
             "compete for the CPU, so a case's time moves from run to run."
             + (" QUICK run: small sizes, not figures to publish." if quick else ""), "",
             "| dataset | MB | harvester MB/s | baseline MB/s | ratio (goal >= 0.8) | each pair's ratio | "
             f"harvester peak RSS MiB (goal < {GOAL_RSS_MB} MB) | baseline peak RSS MiB |", "|---|---|---|---|---|---|---|---|"]
    for dataset_id, (harvester, baseline, pairs) in results.items():
        ratio = harvester.mb_per_s / baseline.mb_per_s
        lines.append(f"| {dataset_id} | {harvester.size / 1e6:.0f} | {harvester.mb_per_s:.1f} | "
                     f"{baseline.mb_per_s:.1f} | {ratio:.3f} {_verdict(ratio >= GOAL_SPEED)} | "
                     f"{' '.join(f'{pair:.2f}' for pair in pairs)} | "
                     f"{harvester.rss_mib:.0f} {_verdict(harvester.rss_mib * MIB / 1e6 < GOAL_RSS_MB)} | {baseline.rss_mib:.0f} |")
    (small, _, _), (large, _, _) = results.values()
    growth = (large.rss_mib - small.rss_mib) * MIB / 1e6
    lines += ["", f"Harvester peak RSS growth from the small to the large dataset: {growth:+.1f} MB "
              f"(goal < {GOAL_GROWTH_MB} MB): {_verdict(growth < GOAL_GROWTH_MB)}."]
    dataset_id, traced_harvester, traced_baseline = breakdown
    lines += ["", f"Where the time of {dataset_id} goes, one traced run of each (not part of the medians). Both "
              "exclude process start-up, imports and client creation. The job's steps run one after the other "
              "on its dataset thread (indented: inside the step above, or on another thread: the later pages are "
              "asked for on the next-page thread while the page before streams, part uploads and "
              "CreateMultipartUpload run on part threads); the baseline does none of the metadata, page, "
              "check, tag and message steps.", "",
              *_steps_table("job step", traced_harvester), "", *_steps_table("baseline step", traced_baseline)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv))
