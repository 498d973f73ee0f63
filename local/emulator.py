"""The stack's AWS resources in an embedded emulator (moto's server on 127.0.0.1).

`LocalAws` starts `moto.server.ThreadedMotoServer` on a free loopback port and creates the
bucket, queue and its DLQ, table, topic and the criteria DLQ with the settings the Pulumi
components use, read from the same `PipelineConfig`. `tests/local/test_emulator_agrees.py`
runs the Pulumi program under mocks and checks both sides agree.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from components.config import PipelineConfig
from contract import Table
from local.delivery import queue_arn

REGION = "us-east-1"
# moto accepts any credentials; fixed fake ones keep boto3 from looking for real ones.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}


@dataclass(frozen=True)
class StackResources:
    """What the components export, for the local stack."""

    bucket: str
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    table: str
    topic_arn: str
    criteria_dead_letter_queue_url: str
    criteria_dead_letter_queue_arn: str


class LocalAws:
    """Context manager: the emulator running, the stack's resources created, env pointed at it."""

    def __init__(self, config: PipelineConfig, port: int = 0) -> None:
        self.config = config
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._saved_env: dict[str, str | None] = {}
        self.endpoint = ""
        self.resources: StackResources | None = None

    @property
    def environment(self) -> dict[str, str]:
        """What a process needs to talk to the emulator (boto3 honours AWS_ENDPOINT_URL)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION, **FAKE_CREDENTIALS}

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing")

    def __enter__(self) -> LocalAws:
        self._server.start()
        try:
            host, port = self._server.get_host_and_port()
            self.endpoint = f"http://{host}:{port}"
            # moto keeps its state per process, not per server: start from an empty account.
            requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
            # Exactly the emulator's AWS settings: none of the host's (a profile, a config file, keys,
            # another endpoint) may break the run or reach a real account. Restored on exit.
            for name in [name for name in os.environ if name.startswith("AWS_")]:
                self._saved_env[name] = os.environ.pop(name)
            for name, value in self.environment.items():
                self._saved_env.setdefault(name, os.environ.get(name))
                os.environ[name] = value
            self.resources = create_stack_resources(self, self.config)
        except BaseException:  # no __exit__ follows a failed __enter__: give the host its settings back
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        self._server.stop()


def create_stack_resources(aws: LocalAws, config: PipelineConfig) -> StackResources:
    s3, sqs = aws.client("s3"), aws.client("sqs")
    dynamodb, sns = aws.client("dynamodb"), aws.client("sns")

    s3.create_bucket(Bucket=config.bucket_name)
    s3.put_bucket_versioning(Bucket=config.bucket_name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=config.bucket_name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=config.bucket_name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})

    dlq_url = sqs.create_queue(QueueName=config.dead_letter_queue_name, Attributes={
        "MessageRetentionPeriod": str(config.dead_letter_retention_seconds),
        "SqsManagedSseEnabled": "true"})["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    queue_url = sqs.create_queue(QueueName=config.queue_name, Attributes={
        "VisibilityTimeout": str(config.queue_visibility_timeout_seconds),
        "MessageRetentionPeriod": str(config.message_retention_seconds),
        "SqsManagedSseEnabled": "true",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                     "maxReceiveCount": config.max_receive_count}),
    })["QueueUrl"]
    criteria_dlq_url = sqs.create_queue(QueueName=config.criteria_dead_letter_queue_name, Attributes={
        "MessageRetentionPeriod": str(config.dead_letter_retention_seconds),
        "SqsManagedSseEnabled": "true"})["QueueUrl"]

    dynamodb.create_table(
        TableName=config.table_name,
        AttributeDefinitions=[{"AttributeName": Table.PARTITION_KEY, "AttributeType": "S"},
                              {"AttributeName": Table.SORT_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": Table.PARTITION_KEY, "KeyType": "HASH"},
                   {"AttributeName": Table.SORT_KEY, "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=config.deletion_protection,
    )
    dynamodb.update_continuous_backups(TableName=config.table_name, PointInTimeRecoverySpecification={
        "PointInTimeRecoveryEnabled": True})

    topic_arn = sns.create_topic(Name=config.topic_name,
                                 Attributes={"KmsMasterKeyId": "alias/aws/sns"})["TopicArn"]
    return StackResources(
        bucket=config.bucket_name, queue_url=queue_url, queue_arn=queue_arn(sqs, queue_url),
        dead_letter_queue_url=dlq_url, table=config.table_name, topic_arn=topic_arn,
        criteria_dead_letter_queue_url=criteria_dlq_url,
        criteria_dead_letter_queue_arn=queue_arn(sqs, criteria_dlq_url),
    )
