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
its message was never sent), failed (with `reason`) or rejected (an inventory row that is not a
harvestable dataset id, with `reason`). A failed inventory read is one failed entry whose id is
the inventory's.

Exit status: 0 no dataset failed (harvested, skipped, re-announced, rejected); 1 at least one failed (Batch retries the job;
the rerun only does what is left); 2 a missing or invalid setting (named on stderr; not retried).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Mapping

# The image and a checkout both hold container/ next to contract/: make the folder above this
# one importable, whether the job runs as a script or as a module.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

from container.harvest import run  # noqa: E402
from container.portal_client import PortalClient, build_retry  # noqa: E402
from container.settings import SettingError, Settings, load_settings, log_level  # noqa: E402
from contract import JobExit  # noqa: E402



def aws_clients(settings: Settings) -> tuple[object, object]:
    # Connections enough for every dataset worker and its in-flight parts.
    config = Config(max_pool_connections=max(10, settings.concurrency * 3), retries={"mode": "standard"})
    return boto3.client("s3", config=config), boto3.client("sqs", config=config)


def main(env: Mapping[str, str] = os.environ) -> int:
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
    try:
        s3, sqs = aws_clients(settings)
        summary = run(settings, portal, s3, sqs)
    finally:
        portal.close()
    print("\n".join(summary.to_lines()))
    print(summary.to_json(), flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main())
