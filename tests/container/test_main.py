"""The real entry point, `python3 container/main.py`, in a subprocess against the local portal and
a moto server on 127.0.0.1: exit codes, the summary line, settings errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from contract import JobEnv
from local.portal import Fault, PortalServer, load_snapshot

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


def run_job(env: dict) -> tuple[int, Any, str]:
    done = subprocess.run([sys.executable, str(MAIN)], env=env, cwd=ROOT.parent, capture_output=True, text=True,
                          timeout=120)
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])["summary"] if lines and lines[-1].startswith("{") else None
    return done.returncode, summary, done.stderr


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
