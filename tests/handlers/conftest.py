"""Fixtures: an emulated AWS account (moto `mock_aws`) with the pipeline's bucket, table and
topic, and builders of REAL Lambda event shapes (SQS and SNS records as AWS delivers them)."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws

from contract import LambdaEnv, Services, Table, dataset_key
from contract.messages import Column, HarvestMessage
from handlers import clients

REGION = "us-east-1"
BUCKET = "arti4207-test-bucket"
TABLE = "ARTI4207-Dynamo-test"
TOPIC = "ARTI4207-topico-test"
ACCOUNT = "123456789012"


class Context(LambdaContext):
    """A Lambda context with the attributes Powertools reads (the runtime makes the real one)."""

    def __init__(self) -> None:
        self._function_name = "ARTI4207-Lambda"
        self._memory_limit_in_mb = 256
        self._invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ARTI4207-Lambda"
        self._aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


@dataclass
class Aws:
    s3: Any
    dynamodb: Any
    sns: Any
    sqs: Any
    topic_arn: str
    subscriber_url: str  # an SQS queue subscribed to the topic: what the topic published

    def put_dataset(self, dataset_id: str, data: bytes) -> str:
        response = self.s3.put_object(Bucket=BUCKET, Key=dataset_key(dataset_id), Body=data)
        return response["VersionId"]

    def published(self) -> list[dict]:
        """Every notification the topic delivered so far (raw message delivery is off: unwrap)."""
        out: list[dict] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.subscriber_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=0).get("Messages", [])
            if not got:
                return out
            for message in got:
                out.append(json.loads(json.loads(message["Body"])["Message"]))
                self.sqs.delete_message(QueueUrl=self.subscriber_url, ReceiptHandle=message["ReceiptHandle"])

    def items(self) -> list[dict]:
        return boto3.resource("dynamodb", region_name=REGION).Table(TABLE).scan()["Items"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv(LambdaEnv.BUCKET, BUCKET)
    monkeypatch.setenv(LambdaEnv.TABLE_NAME, TABLE)
    monkeypatch.setenv(LambdaEnv.POWERTOOLS_SERVICE_NAME, Services.METADATA)
    clients.reset()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": Table.PARTITION_KEY, "KeyType": "HASH"},
                       {"AttributeName": Table.SORT_KEY, "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": Table.PARTITION_KEY, "AttributeType": "S"},
                                  {"AttributeName": Table.SORT_KEY, "AttributeType": "S"}],
        )
        sns = boto3.client("sns", region_name=REGION)
        topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
        sqs = boto3.client("sqs", region_name=REGION)
        subscriber_url = sqs.create_queue(QueueName="topic-subscriber")["QueueUrl"]
        subscriber_arn = sqs.get_queue_attributes(QueueUrl=subscriber_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=subscriber_arn)
        monkeypatch.setenv(LambdaEnv.TOPIC_ARN, topic_arn)
        yield Aws(s3, dynamodb, sns, sqs, topic_arn, subscriber_url)
    clients.reset()


def harvest_message(dataset_id: str, data: bytes, version_id: str | None = None, **overrides: Any) -> HarvestMessage:
    values: dict[str, Any] = dict(
        ID=dataset_id, OWNER="Instituto Nacional de Salud", NAME="Casos positivos de COVID-19 en Colombia",
        EMAIL="datos@ins.gov.co", CATEGORY="Salud y Protección Social", bucket=BUCKET,
        key=dataset_key(dataset_id), version_id=version_id, size=len(data), rows=max(data.count(b"\n") - 1, 0),
        harvested_at="2026-11-27T10:00:00Z", source_updated_at=1_764_000_000,
        update_frequency="Diaria", description="Casos confirmados de COVID-19 reportados por el INS.",
        license="Creative Commons Attribution | Share Alike 4.0 International", attribution="INS",
        columns=(Column(name="Edad", field_name="edad", data_type="number"),),
    )
    values.update(overrides)
    return HarvestMessage(**values)


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict:
    """One record of an SQS -> Lambda event, as AWS delivers it."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a" + uuid.uuid4().hex,
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "1764237600000",
                       "SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateFirstReceiveTimestamp": "1764237600001"},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ARTI4207-SQS",
        "awsRegion": REGION,
    }


def sqs_event(*records: dict) -> dict:
    return {"Records": list(records)}


def sns_event(message: str, topic_arn: str = f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}") -> dict:
    """An SNS -> Lambda event with one record, as AWS delivers it."""
    return {"Records": [{
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic_arn}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "EventSource": "aws:sns",
        "Sns": {
            "SignatureVersion": "1",
            "Timestamp": "2026-11-27T10:00:05.000Z",
            "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ac565b8b1a6c5d002d285f9598aa1d9b.pem",
            "MessageId": str(uuid.uuid4()),
            "Message": message,
            "MessageAttributes": {},
            "Type": "Notification",
            "UnsubscribeUrl": f"https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic_arn}:x",
            "TopicArn": topic_arn,
            "Subject": None,
        },
    }]}


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured log line with its structured `reason` (Powertools writes `extra` keys as
    attributes of the log record)."""
    return "\n".join(f"{r.levelname} {r.getMessage()} {getattr(r, 'reason', '')}" for r in caplog.records)


def process_with_publish_failing(record: dict) -> None:
    """The metadata Lambda on `record` while SNS refuses to publish: the item is written and the
    notification is not (as a crash between the two leaves it); the record fails."""
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
    from botocore.exceptions import ClientError

    from handlers import metadata

    def refuse(**kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "Publish")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clients.client("sns"), "publish", refuse)
        with pytest.raises(BatchProcessingError):
            metadata.handler(sqs_event(record), Context())
