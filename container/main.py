"""The harvester Batch job's entry point: `python3 container/main.py` (in the image,
`python3 /workspace/container/main.py`).

Settings come from the environment (contract.JobEnv; see container/settings.py); AWS endpoints from
boto3's own variables (`AWS_ENDPOINT_URL` points it at an emulator). Logs go to stderr. At the
end the job prints the summary to stdout: readable lines, then ONE JSON line, the last line, with
this shape (the local demo parses it)::

    {"summary": {
        "counts": {"harvested": 0, "skipped": 0, "re-announced": 0, "failed": 0, "rejected": 0},
        "exit_code": 0, "seconds": 1.234, "shard": {"index": 0, "count": 1},
        "datasets": [{"id": "gt2j-8ykr", "status": "harvested", "name": "...", "reason": "",
                      "rows": 99, "size": 17720, "version_id": "...", "seconds": 0.2}, ...]}}

`status` is harvested, skipped (unchanged since the stored copy), re-announced (stored earlier but
its message was never sent), failed (with `reason`) or rejected (an inventory row left out: not a
harvestable dataset id, or a second row of an id already selected; with `reason`). A harvested
entry's `reason` is empty but for a note (a dataset the portal gives no rowsUpdatedAt for is
harvested on every run). A failed inventory read is one failed entry whose id is the inventory's.

Exit status:

- 0: no dataset failed (each harvested, skipped, re-announced or rejected); an empty shard of a
  non-empty selection too.
- 1: at least one failed (Batch retries the job; the rerun only does what is left). Also: the
  inventory could not be read, or it holds no eligible dataset (one failed entry whose id is the
  inventory's); the job's time limit was reached (JOB_TIMEOUT less a margin, see
  container/deadline.py) or SIGTERM came (Batch's time limit, a Spot reclaim): the running
  datasets stop with their uploads aborted, the others are not started, each is a failed entry
  saying so, and the summary is printed before Batch's SIGKILL.
- 2: a missing or invalid setting (named on stderr; not retried).
"""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Mapping

# The image and a checkout both hold container/ next to contract/: make the folder above this
# one importable, whether the job runs as a script or as a module.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from container.deadline import SIGTERM_REACHED, Deadline, job_deadline  # noqa: E402
from container.harvest import datasets_still_running, run  # noqa: E402
from container.portal_client import PortalClient, build_retry  # noqa: E402
from container.settings import SettingError, Settings, load_settings, log_level  # noqa: E402
from contract import JobExit  # noqa: E402


def aws_clients(settings: Settings) -> tuple[object, object]:
    # Connections enough for every dataset worker and its in-flight parts.
    config = Config(max_pool_connections=max(10, settings.concurrency * 3), retries={"mode": "standard"})
    return boto3.client("s3", config=config), boto3.client("sqs", config=config)


def tolerant_output() -> None:
    """A portal's error text (a reason in the summary) can hold half of a surrogate pair (JSON
    "\\ud83d": an emoji cut short); no encoder takes it, and the summary must still be printed."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")  # in the JSON line: the escape \ud83d again


def stop_on_sigterm(job: Deadline) -> None:
    """Batch sends SIGTERM at its time limit and on a Spot reclaim, then SIGKILL ~30 s later (and
    Python, as the container's PID 1, ignores SIGTERM without a handler): the job's deadline
    becomes now, so the datasets stop, their uploads are aborted and the summary is printed in
    time. The handler runs in the main thread, between its short waits (harvest_all); it only moves
    the deadline (logging from a handler could re-enter a write in progress)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: job.bring_forward(time.monotonic(), SIGTERM_REACHED))


def main(env: Mapping[str, str] = os.environ, *, handle_sigterm: bool = False) -> int:
    """The job; `handle_sigterm` only as the entry point (a signal handler belongs to the process)."""
    started = time.monotonic()  # the attempt's clock started a little earlier: job_margin covers it
    tolerant_output()
    try:
        level = log_level(env)
        settings = load_settings(env)
    except SettingError as error:
        print(f"invalid setting: {error}", file=sys.stderr)
        return JobExit.BAD_SETTINGS
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(threadName)s %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    portal = PortalClient(settings.domain, settings.app_token, timeout=settings.http_timeout,
                          retry=build_retry(settings.http_retries, settings.retry_after_max),
                          pool_size=settings.concurrency)
    job = job_deadline(settings.job_timeout, started)
    if handle_sigterm:
        stop_on_sigterm(job)
    try:
        s3, sqs = aws_clients(settings)
        summary = run(settings, portal, s3, sqs, job)
    finally:
        portal.close()
    print("\n".join(summary.to_lines()))
    print(summary.to_json(), flush=True)
    return summary.exit_code


def leave(code: int) -> None:
    """Exits with `code` now that the summary is out. A dataset left behind (stuck in an S3 call
    past STOP_GRACE) keeps its part uploads' pool threads, which Python joins at exit: the attempt
    would run on into Batch's time limit, the one ending Batch never retries. Only then the exit
    skips that join (and the exit hooks) with os._exit, after flushing the output."""
    left_behind = datasets_still_running()
    if not left_behind:
        sys.exit(code)
    logging.getLogger("harvester").warning("exiting without waiting for %d datasets left behind", left_behind)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    leave(main(handle_sigterm=True))
