"""Both Lambdas under at-least-once delivery: the cases the other handler tests leave out (found
by the Lambda review). Two Lambda instances given the same SQS message at once, and a criteria
invocation stopped (a timeout, a crash) between its two writes."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from contract import Item, criteria_key
from handlers import clients, criteria, metadata
from tests.handlers.conftest import BUCKET, Context, harvest_message, sns_event, sqs_event, sqs_record

ID = "gt2j-8ykr"
DATA = b"id,municipio,edad\n" + b"".join(b"%d,BOGOTA,%d\n" % (i, 20 + i % 50) for i in range(60))


def report(aws) -> dict:
    return json.loads(aws.s3.get_object(Bucket=BUCKET, Key=criteria_key(ID))["Body"].read())


def test_one_message_given_to_two_instances_at_once_ends_in_one_item_and_one_evaluation(aws, monkeypatch):
    # SQS standard queues may hand one message to two pollers. Instance 1 has stored the item and
    # is about to publish when instance 2 runs the same record from start to end.
    version = aws.put_dataset(ID, DATA)
    record = sqs_record(harvest_message(ID, DATA, version, update_frequency="No aplica").to_body(), message_id="m1")
    second = dict(record, receiptHandle="second-receipt")
    sns = clients.client("sns")
    real_publish = sns.publish
    ran: list[object] = []

    def publish_after_the_other_instance(**kwargs):
        if not ran:
            monkeypatch.setattr(sns, "publish", real_publish)
            ran.append(metadata.handler(sqs_event(second), Context()))
        return real_publish(**kwargs)

    monkeypatch.setattr(sns, "publish", publish_after_the_other_instance)
    assert metadata.handler(sqs_event(record), Context()) == {"batchItemFailures": []}
    assert ran == [{"batchItemFailures": []}]

    [item] = aws.items()
    assert item[Item.VERSION_ID] == version and Item.NOTIFIED_AT in item
    # The one window the metadata Lambda leaves (its docstring): both instances publish.
    events = [sns_event(json.dumps(n), aws.topic_arn) for n in aws.published()]
    assert len(events) == 2
    for event in events:  # the criteria Lambda stores one result, once per version
        assert criteria.handler(event, Context()) == {"evaluated": [ID]}
    [evaluated] = aws.items()
    assert evaluated[Item.QUALITY_SCORE] is not None and Item.CRITERIA in evaluated
    assert report(aws)["version_id"] == version and report(aws)["counts"]["rows"] == 60


def test_criteria_stopped_between_the_item_and_the_report_is_completed_by_the_retry(aws, monkeypatch):
    # A timeout or crash after UpdateItem and before PutObject: the invocation fails (Lambda
    # retries it), the item holds the result, criteria.json does not yet.
    version = aws.put_dataset(ID, DATA)
    message = harvest_message(ID, DATA, version, update_frequency="No aplica")
    assert metadata.handler(sqs_event(sqs_record(message.to_body())), Context()) == {"batchItemFailures": []}
    [published] = aws.published()
    event = sns_event(json.dumps(published), aws.topic_arn)
    s3 = clients.client("s3")
    real_put = s3.put_object

    def stopped(**kwargs):
        raise ClientError({"Error": {"Code": "RequestTimeout", "Message": "stopped"}}, "PutObject")

    monkeypatch.setattr(s3, "put_object", stopped)
    with pytest.raises(ClientError):
        criteria.handler(event, Context())
    assert Item.CRITERIA in aws.items()[0]
    with pytest.raises(ClientError, match="NoSuchKey"):
        report(aws)

    monkeypatch.setattr(s3, "put_object", real_put)
    assert criteria.handler(event, Context()) == {"evaluated": [ID]}  # Lambda's retry
    [item] = aws.items()
    assert report(aws)["version_id"] == version
    assert item[Item.EVALUATED_AT] == report(aws)["evaluated_at"]
