"""The real entry point, `python3 container/main.py`, in a subprocess against the local portal and
a moto server on 127.0.0.1: exit codes, the summary line, settings errors, SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

import container.main
from container.deadline import SIGTERM_REACHED, STOP_GRACE, Deadline
from container.harvest import Summary
from contract import JobEnv
from local.portal import Fault, PortalServer, generated_dataset, inventory_row, load_snapshot

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "container" / "main.py"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def job_env(moto_endpoint):
    aws = dict(endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="testing",
               aws_secret_access_key="testing")
    bucket = f"job-{uuid.uuid4().hex[:16]}"
    boto3.client("s3", **aws).create_bucket(Bucket=bucket)
    queue_url = boto3.client("sqs", **aws).create_queue(QueueName=bucket)["QueueUrl"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SODA_"))}
    env.update(CREDENTIALS)
    env.update({"AWS_ENDPOINT_URL": moto_endpoint, JobEnv.BUCKET: bucket, JobEnv.QUEUE_URL: queue_url,
                JobEnv.HTTP_RETRIES: "1", JobEnv.HTTP_TIMEOUT: "5"})
    return env


def last_summary(stdout: str) -> Any:
    lines = stdout.strip().splitlines()
    return json.loads(lines[-1])["summary"] if lines and lines[-1].startswith("{") else None


def run_job(env: dict) -> tuple[int, Any, str]:
    done = subprocess.run([sys.executable, str(MAIN)], env=env, cwd=ROOT.parent, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, last_summary(done.stdout), done.stderr


def s3_client(env: dict) -> Any:
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_exit_0_when_every_dataset_is_harvested_then_skipped_on_the_rerun(job_env):
    with PortalServer(load_snapshot()) as portal:
        job_env[JobEnv.SODA_DOMAIN] = portal.url
        code, summary, stderr = run_job(job_env)
        assert code == 0, stderr
        assert summary["counts"] == {"harvested": 4, "skipped": 0, "re-announced": 0, "failed": 0, "rejected": 1}
        assert summary["exit_code"] == 0 and summary["shard"] == {"index": 0, "count": 1}

        code, summary, _ = run_job(job_env)
    assert code == 0 and summary["counts"]["skipped"] == 4 and summary["counts"]["harvested"] == 0


def test_exit_1_when_a_dataset_fails_with_its_reason_in_the_summary(job_env):
    with PortalServer(load_snapshot()) as portal:
        portal.faults.inject("jbjy-vk9h", Fault.truncated())
        job_env.update({JobEnv.SODA_DOMAIN: portal.url, JobEnv.DATASET_IDS: "gt2j-8ykr,jbjy-vk9h,zzzz-0000"})
        code, summary, _ = run_job(job_env)

    assert code == 1
    by_id = {d["id"]: d for d in summary["datasets"]}
    assert by_id["gt2j-8ykr"]["status"] == "harvested" and by_id["gt2j-8ykr"]["rows"] == 99
    assert by_id["jbjy-vk9h"]["status"] == "failed" and "download broken" in by_id["jbjy-vk9h"]["reason"]
    assert by_id["zzzz-0000"]["status"] == "failed" and "404" in by_id["zzzz-0000"]["reason"]


@pytest.mark.parametrize(("change", "named"), [
    ({JobEnv.BUCKET: ""}, JobEnv.BUCKET),
    ({JobEnv.DATASET_IDS: "gt2j-8ykr,../etc"}, JobEnv.DATASET_IDS),
    ({JobEnv.SHARD_COUNT: "2"}, JobEnv.ARRAY_INDEX),
    ({JobEnv.LOG_LEVEL: "verbose"}, JobEnv.LOG_LEVEL),
])
def test_exit_2_on_a_missing_or_invalid_setting_naming_it(job_env, change, named):
    job_env.update(change)
    code, summary, stderr = run_job(job_env)
    assert code == 2 and summary is None
    assert named in stderr


def wait_for(condition, seconds: float = 60.0) -> None:
    until = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < until, "the job never got there"
        time.sleep(0.1)


@dataclass
class Stopped:
    code: int
    summary: Any
    seconds: float  # from SIGTERM to the exit
    stderr: str


def sigterm_when(ready: Callable[[], object], env: dict, tmp_path: Path, timeout: float) -> Stopped:
    """Runs the job as its image does, sends SIGTERM (as Batch does) once `ready()`, and waits
    up to `timeout` seconds for it to end (Batch's SIGKILL comes ~30 s after the SIGTERM)."""
    with (tmp_path / "stderr").open("w") as stderr:
        job = subprocess.Popen([sys.executable, str(MAIN)], env=env, cwd=ROOT.parent,
                               stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            wait_for(ready)
            job.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            stdout, _ = job.communicate(timeout=timeout)
        finally:
            job.kill()
    return Stopped(job.returncode, last_summary(stdout), time.monotonic() - signalled,
                   (tmp_path / "stderr").read_text())


def test_sigterm_mid_harvest_aborts_the_uploads_prints_the_summary_and_exits_1(job_env, tmp_path):
    portal = load_snapshot()
    large = portal.add(generated_dataset("larg-0001", 150000, seed=3))  # two pages are over a part
    trickling = portal.add(generated_dataset("trik-0001", 500, seed=4))
    for dataset in (large, trickling):
        portal.inventory.append(inventory_row(dataset))
    s3 = s3_client(job_env)
    bucket = job_env[JobEnv.BUCKET]
    with PortalServer(portal) as server:
        # larg-0001: a part goes up in its second page, then its third takes 20 s to come;
        # trik-0001: a byte every 50 ms.
        server.faults.inject("larg-0001", Fault("slow", "csv", delay=20.0, min_offset=100000))
        server.faults.inject("trik-0001", Fault.trickle(0.05))
        job_env.update({JobEnv.SODA_DOMAIN: server.url, JobEnv.HARVEST_CONCURRENCY: "2",
                        JobEnv.PAGE_SIZE: "50000", JobEnv.PART_SIZE_MIB: "5",
                        JobEnv.DATASET_IDS: "larg-0001,trik-0001,gt2j-8ykr,jbjy-vk9h"})
        stopped = sigterm_when(lambda: s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
                               and server.requests[("csv", "larg-0001")] == 3
                               and server.requests[("csv", "trik-0001")], job_env, tmp_path, timeout=25)

    assert stopped.code == 1, stopped.stderr
    assert stopped.seconds < 5
    summary = stopped.summary
    assert summary["exit_code"] == 1 and summary["counts"]["failed"] == 4
    reasons = {d["id"]: d["reason"] for d in summary["datasets"]}
    assert reasons["larg-0001"].startswith(f"{SIGTERM_REACHED} while")  # waiting for its next page
    assert reasons["trik-0001"] == f"{SIGTERM_REACHED} while downloading"
    for dataset_id in ("gt2j-8ykr", "jbjy-vk9h"):
        assert reasons[dataset_id] == f"not started: {SIGTERM_REACHED}; the next attempt harvests it"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


@contextlib.contextmanager
def black_hole() -> Iterator[tuple[str, threading.Event]]:
    """An endpoint that accepts connections and never answers (an S3 that hangs)."""
    listener = socket.create_server(("127.0.0.1", 0))
    connected, held = threading.Event(), []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(listener.accept()[0])
                connected.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", connected
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_dataset_stuck_in_s3_is_left_behind_and_does_not_hold_the_exit(job_env, tmp_path):
    # Its part uploads run on a pool whose threads Python joins at exit; past Batch's time
    # limit the attempt would end the way Batch never retries.
    portal = load_snapshot()
    portal.inventory.append(inventory_row(portal.add(generated_dataset("larg-0001", 150000, seed=3))))
    with PortalServer(portal) as server, black_hole() as (s3_endpoint, connected):
        job_env.update({"AWS_ENDPOINT_URL": s3_endpoint, JobEnv.SODA_DOMAIN: server.url, JobEnv.FORCE: "true",
                        JobEnv.PART_SIZE_MIB: "5", JobEnv.DATASET_IDS: "larg-0001,gt2j-8ykr",
                        JobEnv.HARVEST_CONCURRENCY: "1"})
        # Once CreateMultipartUpload is in flight, never to return; botocore alone would wait 60 s a try.
        stopped = sigterm_when(connected.is_set, job_env, tmp_path, timeout=40)

    assert stopped.code == 1, stopped.stderr
    assert STOP_GRACE <= stopped.seconds < STOP_GRACE + 5
    reasons = {d["id"]: d["reason"] for d in stopped.summary["datasets"]}
    assert reasons["larg-0001"].startswith(f"still running {STOP_GRACE:g} s after {SIGTERM_REACHED}: left behind")
    assert reasons["gt2j-8ykr"] == f"not started: {SIGTERM_REACHED}; the next attempt harvests it"


# Put before the job's code: a line on stderr for every write to the file system (an open for
# writing, a file made, moved or removed). An audit hook, not atexit: the job ends with os._exit.
DISK_WRITE = "disk-write "
AUDIT_DISK_WRITES = f"""
import os, sys
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_CHANGES = {{"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.truncate", "os.link",
            "os.symlink", "tempfile.mkstemp", "tempfile.mkdtemp", "shutil.copyfile", "shutil.move"}}
def _audit(event, args, stderr=sys.stderr):
    if event == "open":
        path, mode, flags = args
        if isinstance(path, int) or str(path).startswith(("/dev/", "/proc/")):
            return  # an open descriptor, or not a file
        if (mode is not None and any(c in mode for c in "wax+")) or (mode is None and flags & _WRITE_FLAGS):
            stderr.write(f"{DISK_WRITE}open {{path!r}}\\n")
    elif event in _CHANGES:
        stderr.write(f"{DISK_WRITE}{{event}} {{args[0]!r}}\\n")
sys.addaudithook(_audit)
"""
RUN_MAIN = f"import runpy, sys; sys.argv = [{str(MAIN)!r}]; sys.path[0] = {str(MAIN.parent)!r}; " \
           f"runpy.run_path({str(MAIN)!r}, run_name='__main__')"


def disk_writes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(DISK_WRITE)]


def test_the_audit_sees_a_write():  # the test below can fail
    done = subprocess.run([sys.executable, "-c", AUDIT_DISK_WRITES + "import tempfile; tempfile.TemporaryFile()"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and disk_writes(done.stderr), done.stderr


def test_the_job_writes_nothing_to_disk_so_its_root_file_system_can_be_read_only(job_env):
    # A multipart upload over several pages, a failed dataset's aborted upload, then a rerun.
    portal = load_snapshot()
    portal.inventory.append(inventory_row(portal.add(generated_dataset("larg-0001", 80000, seed=3))))  # 6.9 MiB
    with PortalServer(portal) as server:
        server.faults.inject("jbjy-vk9h", Fault.truncated())
        job_env.update({JobEnv.SODA_DOMAIN: server.url, JobEnv.PAGE_SIZE: "20000", JobEnv.PART_SIZE_MIB: "5",
                        "PYTHONDONTWRITEBYTECODE": "1"})  # as the image sets it
        runs = [subprocess.run([sys.executable, "-c", AUDIT_DISK_WRITES + RUN_MAIN], env=job_env, cwd=ROOT.parent,
                               capture_output=True, text=True, timeout=120) for _ in range(2)]

    first, rerun = (last_summary(run.stdout) for run in runs)
    assert first["counts"] == {"harvested": 4, "skipped": 0, "re-announced": 0, "failed": 1, "rejected": 1}
    assert rerun["counts"]["skipped"] == 4
    assert [disk_writes(run.stderr) for run in runs] == [[], []]


class _LoneSurrogateError(BaseHTTPRequestHandler):
    """Answers every request with a 500 whose JSON message ends in half of a surrogate pair."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b'{"code": "internal", "error": true, "message": "caf\\ud83d cut short"}'
        self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass


def test_an_error_text_with_a_lone_surrogate_still_ends_with_the_summary_line(job_env):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoneSurrogateError)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        job_env[JobEnv.SODA_DOMAIN] = f"http://127.0.0.1:{server.server_address[1]}"
        code, summary, stderr = run_job(job_env)
    finally:
        server.shutdown()
        server.server_close()

    assert code == 1 and summary is not None, stderr
    [entry] = summary["datasets"]
    assert entry["id"] == "uzcf-b9dh" and entry["status"] == "failed"
    assert entry["reason"].endswith("HTTP 500 Internal Server Error: caf\ud83d cut short")  # escaped, not lost
    assert "Logging error" not in stderr


def test_main_gives_run_the_job_deadline_from_job_timeout_and_leaves_sigterm_alone(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    given: list[Deadline] = []

    def fake_run(settings, portal, s3, sqs, job):
        given.append(job)
        return Summary()

    monkeypatch.setattr(container.main, "run", fake_run)
    before = signal.getsignal(signal.SIGTERM)
    began = time.monotonic()

    code = container.main.main({JobEnv.BUCKET: "b", JobEnv.QUEUE_URL: "https://sqs/q", JobEnv.JOB_TIMEOUT: "300"})

    assert code == 0
    [job] = given
    assert began + 270 <= job.at <= time.monotonic() + 270  # JOB_TIMEOUT less its 30 s margin
    assert "JOB_TIMEOUT=300 s" in job.reached
    assert signal.getsignal(signal.SIGTERM) is before  # a caller's process keeps its own handling
