"""Fixtures: a local Socrata-compatible portal on 127.0.0.1 and S3/SQS emulated in-process by moto."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any, Callable

import boto3
import pytest
import urllib3.util.retry
from moto import mock_aws

from container.deadline import Deadline
from container.harvest import Summary, run
from container.portal_client import PortalClient, build_retry
from container.settings import Settings
from local.portal import Portal, PortalServer, generated_dataset, inventory_row

BUCKET = "arti4207-test"
PAGE = 400  # rows per page in tests: small, so datasets span many pages


@pytest.fixture
def portal() -> Portal:
    """Four eligible generated datasets: one beyond three pages and 1000 rows, one exactly two
    pages, one smaller than a page, one empty."""
    portal = Portal()
    for dataset_id, rows in (("big1-2345", 1250), ("even-0800", 2 * PAGE), ("smal-0001", 37), ("empt-0000", 0)):
        dataset = generated_dataset(dataset_id, rows, seed=rows)
        portal.add(dataset, inventory_row(dataset))
    return portal


@pytest.fixture
def server(portal: Portal):
    with PortalServer(portal) as server:
        yield server


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="harvest-test")["QueueUrl"]
        yield AwsFixture(s3, sqs, queue_url)


class AwsFixture:
    def __init__(self, s3: Any, sqs: Any, queue_url: str) -> None:
        self.s3, self.sqs, self.queue_url = s3, sqs, queue_url

    def object(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def keys(self) -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]

    def pending_uploads(self) -> list[dict]:
        return self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])

    def messages(self) -> list[dict]:
        bodies: list[dict] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return bodies
            for message in batch:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def settings(server: PortalServer, aws: AwsFixture) -> Settings:
    return Settings(bucket=BUCKET, queue_url=aws.queue_url, domain=server.url, page_size=PAGE,
                    http_timeout=2.0, http_retries=3, retry_after_max=5, dataset_limit=0, concurrency=2,
                    part_size=5 * 1024 * 1024)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """urllib3's retry sleeps, recorded instead of slept: tests prove the waits without waiting."""
    recorded: list[float] = []
    # Replace the module's `time` (not time.sleep itself: the portal's slow faults must still sleep).
    monkeypatch.setattr(urllib3.util.retry, "time", SimpleNamespace(sleep=recorded.append, time=time.time))
    return recorded


@pytest.fixture
def harvest(aws: AwsFixture) -> Callable[..., Summary]:
    def harvest(settings: Settings, job: Deadline | None = None, **overrides: Any) -> Summary:
        settings = replace(settings, **overrides)
        client = PortalClient(settings.domain, settings.app_token, timeout=settings.http_timeout,
                              retry=build_retry(settings.http_retries, settings.retry_after_max, backoff_factor=0.01),
                              pool_size=settings.concurrency)
        try:
            return run(settings, client, aws.s3, aws.sqs, job)
        finally:
            client.close()
    return harvest
