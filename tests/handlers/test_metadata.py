"""handlers/metadata.py against moto: item, notification, order, partial failures, redelivery."""

from __future__ import annotations

import hashlib
import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.exceptions import ClientError

from contract import Item, Table
from contract.messages import DatasetNotification
from handlers import clients, metadata
from tests.handlers.conftest import (BUCKET, Context, harvest_message, logged, process_with_publish_failing, sqs_event,
                                     sqs_record)

# A quoted cell holding a newline: 3 records after the header, 4 newlines.
DATA = 'id,texto,edad\n1,"uno\ndos",30\n2,tres,\n3,cuatro,41\n'.encode()


def stored(aws, dataset_id="gt2j-8ykr", data=DATA, **overrides):
    version = aws.put_dataset(dataset_id, data)
    values = {"version_id": version, "rows": 3, **overrides}
    return harvest_message(dataset_id, data, **values)


def test_item_and_notification_carry_the_hash_of_the_stored_bytes(aws):
    message = stored(aws)
    record = sqs_record(message.to_body())

    response = metadata.handler(sqs_event(record), Context())

    assert response == {"batchItemFailures": []}
    stored_bytes = aws.s3.get_object(Bucket=BUCKET, Key=message.key)["Body"].read()
    expected_hash = hashlib.sha256(stored_bytes).hexdigest()
    [item] = aws.items()
    assert item[Table.PARTITION_KEY] == expected_hash and item[Table.SORT_KEY] == "gt2j-8ykr"
    assert {k: item[k] for k in ("OWNER", "NAME", "EMAIL", "CATEGORY")} == {
        "OWNER": message.OWNER, "NAME": message.NAME, "EMAIL": message.EMAIL, "CATEGORY": message.CATEGORY}
    assert item[Item.BUCKET] == BUCKET and item[Item.KEY] == "gt2j-8ykr/gt2j-8ykr.csv"
    assert item[Item.VERSION_ID] == message.version_id
    assert item[Item.SIZE] == len(DATA) and item[Item.ROWS] == 3  # the quoted newline counts once
    assert item[Item.SOURCE_UPDATED_AT] == message.source_updated_at
    assert item[Item.HARVESTED_AT] == message.harvested_at and item[Item.PROCESSED_AT]
    assert item[Item.NOTIFIED_AT]
    [published] = aws.published()
    notification = DatasetNotification.from_body(json.dumps(published))
    assert published["ID"] == "gt2j-8ykr" and published["HASH"] == expected_hash
    assert (published["bucket"], published["key"], published["version_id"]) == (BUCKET, message.key, message.version_id)
    assert notification.dataset.update_frequency == "Diaria" and notification.dataset.columns == message.columns


def test_unversioned_message_reads_and_records_the_current_version(aws):
    message = stored(aws, version_id=None)
    metadata.handler(sqs_event(sqs_record(message.to_body())), Context())
    current = aws.s3.head_object(Bucket=BUCKET, Key=message.key)["VersionId"]
    assert aws.items()[0][Item.VERSION_ID] == current
    assert aws.published()[0]["version_id"] == current


def test_failed_put_item_publishes_nothing(aws, monkeypatch):
    message = stored(aws)
    dynamodb = clients.client("dynamodb")

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}, "PutItem")

    monkeypatch.setattr(dynamodb, "put_item", refuse)
    record = sqs_record(message.to_body())
    with pytest.raises(BatchProcessingError):  # the only record failed: the invocation fails
        metadata.handler(sqs_event(record), Context())
    assert aws.published() == []
    assert aws.items() == []


def test_partial_batch_reports_only_the_failed_records(aws, caplog):
    good = sqs_record(stored(aws).to_body(), message_id="good")
    malformed = sqs_record("{not json", message_id="malformed")
    missing = sqs_record(harvest_message("aaaa-1111", DATA, None).to_body(), message_id="missing")

    response = metadata.handler(sqs_event(good, malformed, missing), Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "malformed"}, {"itemIdentifier": "missing"}]}
    assert [item[Table.SORT_KEY] for item in aws.items()] == ["gt2j-8ykr"]
    assert [n["ID"] for n in aws.published()] == ["gt2j-8ykr"]
    logs = logged(caplog)
    assert "ERROR Malformed message" in logs and "body is not JSON" in logs
    assert "Cannot read the stored object" in logs and "NoSuchKey" in logs


@pytest.mark.parametrize("change, reason", [
    ({"bucket": "someone-elses-bucket"}, "is not the configured bucket"),
    ({"key": "gt2j-8ykr/other.csv"}, "is not 'gt2j-8ykr/gt2j-8ykr.csv'"),
    ({"key": "../gt2j-8ykr/gt2j-8ykr.csv"}, "is not 'gt2j-8ykr/gt2j-8ykr.csv'"),
    ({"ID": "gt2j-8ykr:0"}, "not a Socrata dataset id"),
    ({"size": -1}, "size must be a non-negative integer"),
])
def test_malformed_message_fails_alone_with_its_reason(aws, caplog, change, reason):
    body = json.loads(stored(aws).to_body())
    body.update(change)
    bad = sqs_record(json.dumps(body), message_id="bad")
    good = sqs_record(stored(aws, "abcd-1234").to_body(), message_id="good")

    response = metadata.handler(sqs_event(bad, good), Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert reason in logged(caplog)
    assert [n["ID"] for n in aws.published()] == ["abcd-1234"]


def test_missing_required_key_is_malformed(aws, caplog):
    body = json.loads(stored(aws).to_body())
    del body["harvested_at"]
    response = metadata.handler(sqs_event(sqs_record(json.dumps(body), message_id="x"),
                                          sqs_record(stored(aws, "abcd-1234").to_body())), Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "x"}]}
    assert "missing keys: harvested_at" in logged(caplog)


def test_redelivery_leaves_one_item_and_one_notification(aws):
    record = sqs_record(stored(aws).to_body())
    metadata.handler(sqs_event(record), Context())
    notified_at = aws.items()[0][Item.NOTIFIED_AT]

    again = dict(record, receiptHandle="another-receipt", attributes={**record["attributes"], "ApproximateReceiveCount": "2"})
    response = metadata.handler(sqs_event(again), Context())

    assert response == {"batchItemFailures": []}
    assert len(aws.items()) == 1 and aws.items()[0][Item.NOTIFIED_AT] == notified_at
    assert len(aws.published()) == 1


def test_redelivery_after_a_crash_between_item_and_publish_notifies_once(aws):
    record = sqs_record(stored(aws).to_body(), message_id="m1")
    process_with_publish_failing(record)
    [item] = aws.items()
    assert Item.NOTIFIED_AT not in item  # the item exists, the notification does not
    assert aws.published() == []

    assert metadata.handler(sqs_event(record), Context()) == {"batchItemFailures": []}
    assert metadata.handler(sqs_event(record), Context()) == {"batchItemFailures": []}

    assert len(aws.published()) == 1
    [item] = aws.items()
    assert Item.NOTIFIED_AT in item


# Either order of `harvested_at`: which version is the key's current one decides, not the clock
# of the run (an overlapping run that started later can complete first).
@pytest.mark.parametrize("older_at, newer_at", [("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"),
                                                ("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z")])
def test_late_delivery_of_an_older_harvest_of_the_same_bytes_changes_nothing(aws, caplog, older_at, newer_at):
    older = stored(aws, harvested_at=older_at)
    late = sqs_record(older.to_body(), message_id="m1")
    metadata.handler(sqs_event(late), Context())
    newer = stored(aws, harvested_at=newer_at)  # same bytes: same item key, new (current) version
    metadata.handler(sqs_event(sqs_record(newer.to_body(), message_id="m2")), Context())
    assert len(aws.published()) == 2  # the later harvest replaced the item and was announced
    [item] = aws.items()
    key = {Table.PARTITION_KEY: {"S": item[Table.PARTITION_KEY]}, Table.SORT_KEY: {"S": item[Table.SORT_KEY]}}
    aws.dynamodb.update_item(TableName="ARTI4207-Dynamo-test", Key=key, UpdateExpression="SET #s = :s",
                             ExpressionAttributeNames={"#s": Item.QUALITY_SCORE},
                             ExpressionAttributeValues={":s": {"N": "9.5"}})  # the criteria Lambda's result

    # SQS at-least-once (or a DLQ replay): the older harvest's message arrives again.
    again = dict(late, receiptHandle="another-receipt")
    assert metadata.handler(sqs_event(again), Context()) == {"batchItemFailures": []}

    [after] = aws.items()
    assert after == item | {Item.QUALITY_SCORE: after[Item.QUALITY_SCORE]} and after[Item.QUALITY_SCORE] == 9.5
    assert after[Item.VERSION_ID] == newer.version_id and after[Item.HARVESTED_AT] == newer.harvested_at
    assert aws.published() == []
    assert "Message superseded" in logged(caplog)


def test_same_bytes_under_two_ids_keep_one_item_each(aws):
    metadata.handler(sqs_event(sqs_record(stored(aws, "aaaa-1111").to_body()),
                               sqs_record(stored(aws, "bbbb-2222").to_body())), Context())
    items = aws.items()
    assert sorted(i[Table.SORT_KEY] for i in items) == ["aaaa-1111", "bbbb-2222"]
    assert len({i[Table.PARTITION_KEY] for i in items}) == 1


def test_reharvest_with_new_content_adds_an_item(aws):
    metadata.handler(sqs_event(sqs_record(stored(aws).to_body())), Context())
    newer = DATA + b"4,cinco,50\n"
    metadata.handler(sqs_event(sqs_record(stored(aws, data=newer, rows=4).to_body())), Context())
    assert len(aws.items()) == 2 and len(aws.published()) == 2


def test_deleted_version_fails_and_is_retried(aws):
    message = stored(aws)
    aws.s3.delete_object(Bucket=BUCKET, Key=message.key, VersionId=message.version_id)
    record = sqs_record(message.to_body(), message_id="gone")
    with pytest.raises(BatchProcessingError):
        metadata.handler(sqs_event(record), Context())
    assert aws.items() == [] and aws.published() == []


def test_a_record_failing_in_a_partial_batch_leaves_its_error_in_the_log(aws, caplog, monkeypatch):
    # With batchSize > 1 the invocation succeeds and returns batchItemFailures: Lambda logs no
    # error, Powertools only at debug level, so after maxReceiveCount the DLQ alarm would point at
    # a log group holding no word of why (here SNS refusing one dataset's notification).
    good, bad = stored(aws, "abcd-1234"), stored(aws)
    sns = clients.client("sns")
    real_publish = sns.publish

    def refuse_one(**kwargs):
        if json.loads(kwargs["Message"])["ID"] == bad.ID:
            raise ClientError({"Error": {"Code": "KMSThrottlingException", "Message": "slow"}}, "Publish")
        return real_publish(**kwargs)

    monkeypatch.setattr(sns, "publish", refuse_one)
    response = metadata.handler(sqs_event(sqs_record(good.to_body(), message_id="good"),
                                          sqs_record(bad.to_body(), message_id="bad")), Context())

    assert response == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    [failed] = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR") and r.exc_info]
    assert "KMSThrottlingException" in str(failed.exc_info[1])
    logged_line = json.loads(metadata.logger.registered_formatter.format(failed))  # as the Lambda writes it
    assert (logged_line["dataset_id"], logged_line["message_id"]) == (bad.ID, "bad")
