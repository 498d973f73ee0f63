"""handlers/metadata.py: the item of a HASH + ID follows the key's CURRENT version, the order S3
gives versions (when an upload completes), not the harvest timestamps. With the criteria Lambda
downstream, the end state to check is `criteria.json` describing the current version."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError

from contract import Item, LambdaEnv, criteria_key, dataset_key
from contract.messages import HarvestMessage
from handlers import clients, criteria, metadata
from tests.handlers.conftest import (BUCKET, Context, harvest_message, logged, process_with_publish_failing, sns_event,
                                     sqs_event, sqs_record)

ID = "gt2j-8ykr"
OLD = b"id,municipio,edad\n" + b"".join(b"%d,CALI,%d\n" % (i, i) for i in range(60))
NEW = b"id,municipio,edad\n" + b"".join(b"%d,BOGOTA,%d\n" % (i, 20 + i % 50) for i in range(60))


def message(data: bytes, version_id: str | None, harvested_at: str, **overrides) -> HarvestMessage:
    # "No aplica": the evaluation must not depend on the day the tests run.
    return harvest_message(ID, data, version_id=version_id, update_frequency="No aplica",
                           harvested_at=harvested_at, **overrides)


def run_metadata(aws, harvest: HarvestMessage) -> list[dict]:
    """The metadata Lambda on one message; the SNS events of what it published."""
    assert metadata.handler(sqs_event(sqs_record(harvest.to_body())), Context()) == {"batchItemFailures": []}
    return [sns_event(json.dumps(published), aws.topic_arn) for published in aws.published()]


def report(aws) -> dict:
    return json.loads(aws.s3.get_object(Bucket=BUCKET, Key=criteria_key(ID))["Body"].read())


def items_by_version(aws) -> dict[str, dict]:
    return {item[Item.VERSION_ID]: item for item in aws.items()}


@pytest.mark.parametrize("arrival", ["B first", "A first"])
def test_overlapping_harvests_end_with_the_current_versions_item_and_report(aws, arrival):
    # An earlier harvest, evaluated: criteria.json describes the OLD bytes.
    v0 = aws.put_dataset(ID, OLD)
    for event in run_metadata(aws, message(OLD, v0, "2026-11-01T00:00:00.000Z")):
        criteria.handler(event, Context())
    # The portal now serves NEW. Run A starts at 10:00, run B at 10:05; B's upload completes first,
    # A's last, so A's version is the current object although its harvested_at is earlier.
    v_b = aws.put_dataset(ID, NEW)
    v_a = aws.put_dataset(ID, NEW)
    b = message(NEW, v_b, "2026-11-27T10:05:00.000Z")
    a = message(NEW, v_a, "2026-11-27T10:00:00.000Z")

    first, second = (b, a) if arrival == "B first" else (a, b)
    events = run_metadata(aws, first) + run_metadata(aws, second)
    for event in events:
        criteria.handler(event, Context())

    # B arriving first is the first item of the NEW bytes: recorded and announced, then replaced by
    # A's; B arriving after A's item never replaces it.
    assert [json.loads(e["Records"][0]["Sns"]["Message"])["version_id"] for e in events] == (
        [v_b, v_a] if arrival == "B first" else [v_a])
    assert aws.s3.head_object(Bucket=BUCKET, Key=dataset_key(ID))["VersionId"] == v_a
    assert report(aws)["version_id"] == v_a and report(aws)["hash"] != items_by_version(aws)[v0]["HASH"]
    assert set(items_by_version(aws)) == {v0, v_a}  # one item per bytes: OLD's, and NEW's holding A
    assert Item.CRITERIA in items_by_version(aws)[v_a] and Item.NOTIFIED_AT in items_by_version(aws)[v_a]


def test_replay_of_a_noncurrent_version_does_not_roll_back_the_evaluated_item(aws, caplog):
    v_b = aws.put_dataset(ID, NEW)
    v_a = aws.put_dataset(ID, NEW)  # current; B's harvested_at is the later one
    b = message(NEW, v_b, "2026-11-27T10:05:00.000Z")
    for event in run_metadata(aws, message(NEW, v_a, "2026-11-27T10:00:00.000Z")):
        criteria.handler(event, Context())
    [item], evaluated = aws.items(), report(aws)

    # B's message, failed earlier and redriven from the DLQ, twice.
    assert run_metadata(aws, b) == [] and run_metadata(aws, b) == []

    assert aws.items() == [item] and item[Item.VERSION_ID] == v_a and Item.CRITERIA in item
    assert report(aws) == evaluated
    assert "Message superseded" in logged(caplog)


def test_noncurrent_version_records_the_first_item_of_its_bytes(aws):
    v_old = aws.put_dataset(ID, OLD)
    aws.put_dataset(ID, NEW)  # current, its message not processed yet
    [event] = run_metadata(aws, message(OLD, v_old, "2026-11-01T00:00:00.000Z"))

    [item] = aws.items()
    assert item[Item.VERSION_ID] == v_old and Item.NOTIFIED_AT in item
    criteria.handler(event, Context())  # evaluated on its own item, but not the current report
    assert Item.CRITERIA in aws.items()[0]
    with pytest.raises(ClientError):
        report(aws)


def test_redelivery_of_a_noncurrent_first_item_changes_nothing(aws):
    v_b = aws.put_dataset(ID, NEW)
    aws.put_dataset(ID, OLD)  # current: other bytes, another item
    b = message(NEW, v_b, "2026-11-27T10:05:00.000Z")
    assert len(run_metadata(aws, b)) == 1
    [item] = aws.items()

    assert run_metadata(aws, b) == []
    assert aws.items() == [item]


def test_crash_before_publish_then_the_version_stops_being_current_still_notifies_once(aws):
    v_b = aws.put_dataset(ID, NEW)
    record = sqs_record(message(NEW, v_b, "2026-11-27T10:05:00.000Z").to_body())
    process_with_publish_failing(record)
    v_a = aws.put_dataset(ID, NEW)  # A completes: B is no longer current

    assert metadata.handler(sqs_event(record), Context()) == {"batchItemFailures": []}
    assert metadata.handler(sqs_event(record), Context()) == {"batchItemFailures": []}
    assert [p["version_id"] for p in aws.published()] == [v_b]
    # A's own message then takes the item over.
    assert len(run_metadata(aws, message(NEW, v_a, "2026-11-27T10:00:00.000Z"))) == 1
    assert [item[Item.VERSION_ID] for item in aws.items()] == [v_a]


def test_a_version_publishing_while_a_newer_one_takes_its_item_does_not_mark_the_newer_notified(aws, monkeypatch):
    # A (current) stored its item and is publishing when B's upload of the same bytes completes and
    # B's Lambda replaces the item, then fails to publish (its record goes back to the queue).
    v_a = aws.put_dataset(ID, NEW)
    sns = clients.client("sns")
    real_publish = sns.publish
    b: list[tuple[str, dict]] = []

    def refuse(**kwargs):
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish")

    def publish_while_b_runs(**kwargs):
        if not b:
            v_b = aws.put_dataset(ID, NEW)
            b.append((v_b, sqs_record(message(NEW, v_b, "2026-11-27T10:05:00.000Z").to_body(), message_id="b")))
            # B's Lambda, another instance: its record handler (the handler's batch processor is
            # one per instance, busy with A here).
            with monkeypatch.context() as b_instance:
                b_instance.setattr(sns, "publish", refuse)
                with pytest.raises(ClientError):
                    metadata.record_handler(SQSRecord(b[0][1]))
        return real_publish(**kwargs)

    monkeypatch.setattr(sns, "publish", publish_while_b_runs)
    assert metadata.handler(sqs_event(sqs_record(message(NEW, v_a, "2026-11-27T10:00:00.000Z").to_body())),
                            Context()) == {"batchItemFailures": []}
    [(v_b, record)] = b
    [item] = aws.items()
    assert item[Item.VERSION_ID] == v_b and Item.NOTIFIED_AT not in item  # A's mark did not land on B's item
    # SQS redelivers B: it publishes now, so the current version is evaluated.
    assert metadata.handler(sqs_event(record), Context()) == {"batchItemFailures": []}
    published = aws.published()
    assert [p["version_id"] for p in published] == [v_a, v_b]
    for notification in published:
        criteria.handler(sns_event(json.dumps(notification), aws.topic_arn), Context())
    assert report(aws)["version_id"] == v_b


def test_version_that_becomes_noncurrent_between_head_and_put_loses_to_the_newer_message(aws, monkeypatch):
    v_b = aws.put_dataset(ID, NEW)
    s3 = clients.client("s3")
    real_head = s3.head_object
    completed: list[str] = []

    def head_then_a_completes(**kwargs):
        response = real_head(**kwargs)
        if not completed:
            completed.append(aws.put_dataset(ID, NEW))
        return response

    monkeypatch.setattr(s3, "head_object", head_then_a_completes)
    assert len(run_metadata(aws, message(NEW, v_b, "2026-11-27T10:05:00.000Z"))) == 1  # B saw itself current
    [v_a] = completed
    # The harvester sends A's message after A's upload completed: it is processed afterwards.
    assert len(run_metadata(aws, message(NEW, v_a, "2026-11-27T10:00:00.000Z"))) == 1
    assert [item[Item.VERSION_ID] for item in aws.items()] == [v_a]


def test_key_without_a_current_object_is_not_current(aws):
    v_a = aws.put_dataset(ID, NEW)
    for event in run_metadata(aws, message(NEW, v_a, "2026-11-27T10:00:00.000Z")):
        criteria.handler(event, Context())
    v_b = aws.put_dataset(ID, NEW)
    aws.s3.delete_object(Bucket=BUCKET, Key=dataset_key(ID))  # a delete marker: HeadObject answers 404

    assert run_metadata(aws, message(NEW, v_b, "2026-11-27T10:05:00.000Z")) == []
    assert [item[Item.VERSION_ID] for item in aws.items()] == [v_a]


@pytest.mark.parametrize("code", ["403", "SlowDown"])
def test_other_head_object_errors_fail_the_record_before_any_write(aws, monkeypatch, code):
    # With s3:ListBucket a missing key is a 404: a 403 is a permission problem, which must show
    # (retries, then the DLQ and its alarm), not pass for "not current".
    v_a = aws.put_dataset(ID, NEW)

    def refused(**kwargs):
        raise ClientError({"Error": {"Code": code, "Message": "no"}}, "HeadObject")

    monkeypatch.setattr(clients.client("s3"), "head_object", refused)
    with pytest.raises(BatchProcessingError):
        metadata.handler(sqs_event(sqs_record(message(NEW, v_a, "2026-11-27T10:00:00.000Z").to_body())), Context())
    assert aws.items() == [] and aws.published() == []


def test_unversioned_bucket_object_is_current_and_a_reharvest_of_the_same_bytes_is_a_duplicate(aws, monkeypatch):
    monkeypatch.setenv(LambdaEnv.BUCKET, "unversioned-bucket")
    aws.s3.create_bucket(Bucket="unversioned-bucket")
    for harvested_at in ("2026-11-27T10:00:00.000Z", "2026-11-28T10:00:00.000Z"):
        aws.s3.put_object(Bucket="unversioned-bucket", Key=dataset_key(ID), Body=NEW)
        metadata.handler(sqs_event(sqs_record(
            message(NEW, None, harvested_at, bucket="unversioned-bucket").to_body())), Context())

    [item] = aws.items()
    assert item[Item.VERSION_ID] == "" and item[Item.HARVESTED_AT] == "2026-11-27T10:00:00.000Z"
    assert len(aws.published()) == 1
