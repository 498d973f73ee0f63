"""handlers/criteria.py against moto: stored results, bad inputs, failure policy."""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from botocore.exceptions import ClientError

from contract import Item, LambdaEnv, Table, criteria_key, dataset_key
from contract.messages import DatasetNotification, InvalidMessage
from handlers import criteria, metadata
from tests.handlers.conftest import BUCKET, REGION, TABLE, Context, logged, sns_event, sqs_event, sqs_record, harvest_message

HEADER = b"id,municipio,edad\n"
GOOD = HEADER + b"".join(b"%d,BOGOTA,%d\n" % (i, 20 + i % 50) for i in range(60))


def notify(aws, data: bytes, dataset_id: str = "gt2j-8ykr", **overrides) -> dict:
    """Runs the metadata Lambda on a stored object and returns the SNS event it caused."""
    version = aws.put_dataset(dataset_id, data)
    # "No aplica": actualidad (and ERR015) must not depend on the day the tests run.
    values = {"version_id": version, "update_frequency": "No aplica", **overrides}
    message = harvest_message(dataset_id, data, **values)
    assert metadata.handler(sqs_event(sqs_record(message.to_body())), Context()) == {"batchItemFailures": []}
    [published] = aws.published()
    return sns_event(json.dumps(published), aws.topic_arn)


def stored_report(aws, dataset_id: str = "gt2j-8ykr", bucket: str = BUCKET) -> dict:
    return json.loads(aws.s3.get_object(Bucket=bucket, Key=criteria_key(dataset_id))["Body"].read())


def test_result_is_stored_on_the_item_and_next_to_the_data(aws):
    event = notify(aws, GOOD)

    assert criteria.handler(event, Context()) == {"evaluated": ["gt2j-8ykr"]}

    [item] = aws.items()
    report = stored_report(aws)
    assert item[Item.QUALITY_SCORE] == Decimal(str(report["score"]))
    assert item[Item.ERROR_CODES] == [] and report["error_codes"] == []
    assert item[Item.EVALUATED_AT] == report["evaluated_at"]
    stored = item[Item.CRITERIA]
    assert set(stored) >= {"completitud", "unicidad", "actualidad", "exactitud", "comprensibilidad",
                           "trazabilidad", "credibilidad", "confidencialidad", "portabilidad", "disponibilidad"}
    assert stored["completitud"]["score"] == 10 and stored["unicidad"]["score"] == 10
    assert stored["exactitud"]["inputs"]["checked_cells"] == 60  # "edad" declared a number
    assert {c["name"]: c["score"] for c in report["criteria"]}["disponibilidad"] == 10


def test_a_report_too_large_for_a_dynamodb_item_is_shortened_there_and_whole_in_s3(aws):
    # 3,000 columns with 64-byte names, each a personal-data name and all equal (every list of
    # column names in the report is full): 476 KB on the item whole, over DynamoDB's 400 KB.
    names = [f"numero_de_documento_{i:04d}_".ljust(64, "x").encode() for i in range(3000)]
    data = b",".join(names) + b"\n" + b"\n".join(b",".join([b"%d" % row] * 3000) for row in range(3)) + b"\n"

    criteria.handler(notify(aws, data), Context())

    [item] = aws.items()
    stored = item[Item.CRITERIA]
    assert len(json.dumps(stored, default=str).encode()) < 100_000
    assert stored["confidencialidad"]["shortened"] is True
    assert len(stored["confidencialidad"]["inputs"]["sensitive_columns"]) == criteria.ITEM_ENTRIES
    report = {c["name"]: c for c in stored_report(aws)["criteria"]}
    assert len(report["confidencialidad"]["inputs"]["sensitive_columns"]) == 3000  # whole in S3
    assert len(report["unicidad"]["inputs"]["duplicate_columns"]) == 2999  # each column after the first


def test_malformed_notification_is_logged_and_raised_for_the_on_failure_destination(aws, caplog):
    with pytest.raises(InvalidMessage) as raised:
        criteria.handler(sns_event('{"ID": "gt2j-8ykr"}'), Context())
    assert "HASH is not a SHA-256" in str(raised.value)
    assert "ERROR Malformed notification" in logged(caplog)
    assert aws.items() == []


def test_notification_for_another_bucket_is_malformed(aws, caplog):
    event = notify(aws, GOOD)
    body = json.loads(event["Records"][0]["Sns"]["Message"])
    body["bucket"] = "another-bucket"
    with pytest.raises(InvalidMessage, match="is not the configured bucket"):
        criteria.handler(sns_event(json.dumps(body)), Context())
    assert "is not the configured bucket" in logged(caplog)


def test_notification_for_another_datasets_object_is_malformed(aws, caplog):
    other_version = aws.put_dataset("abcd-1234", GOOD + b"999,OTRO,1\n")
    event = notify(aws, GOOD)
    body = json.loads(event["Records"][0]["Sns"]["Message"])
    body["key"], body["version_id"] = "abcd-1234/abcd-1234.csv", other_version  # a real object, another dataset's
    with pytest.raises(InvalidMessage, match="is not 'gt2j-8ykr/gt2j-8ykr.csv'"):
        criteria.handler(sns_event(json.dumps(body)), Context())
    assert "Malformed notification" in logged(caplog)
    assert [Item.CRITERIA in item for item in aws.items()] == [False]  # the metadata item, unscored


def test_missing_object_is_stored_as_unavailable(aws, caplog):
    event = notify(aws, GOOD)
    message = DatasetNotification.from_body(event["Records"][0]["Sns"]["Message"])
    aws.s3.delete_object(Bucket=BUCKET, Key=message.dataset.key, VersionId=message.dataset.version_id)

    criteria.handler(event, Context())

    report = stored_report(aws)
    assert "object_missing" in report["issues"] and "ERR004" in report["error_codes"]
    assert {c["name"]: c["score"] for c in report["criteria"]}["disponibilidad"] == 0
    assert "NoSuchVersion" in logged(caplog) or "NoSuchKey" in logged(caplog)
    assert aws.items()[0][Item.ERROR_CODES] == ["ERR004"]


@pytest.mark.parametrize("data, codes, issue", [
    (b"", ["ERR004", "ERR008"], None),  # empty object: no header, no rows
    (HEADER, ["ERR004"], None),  # header only
    (HEADER + b"1,BOGOT\xc1,30\n" * 60, [], "not_utf8"),  # Latin-1 bytes
    (HEADER + b"1,BOGOTA\n2,CALI,3,4\n" + GOOD[len(HEADER):], [], "ragged_rows"),
])
def test_bad_input_yields_a_stored_result_with_codes(aws, data, codes, issue):
    criteria.handler(notify(aws, data), Context())
    report = stored_report(aws)
    assert report["error_codes"] == codes
    if issue:
        assert issue in report["issues"]
    assert aws.items()[0][Item.ERROR_CODES] == codes


def test_first_line_with_an_unclosed_quote_is_scored_as_a_header_only_file(aws):
    # The quote never closes: the whole file is one record, the header (as the csv module reads it).
    criteria.handler(notify(aws, b'id,"municipio,edad\n1,BOGOTA,30\n'), Context())
    report = stored_report(aws)
    assert (report["counts"]["columns"], report["counts"]["rows"]) == (2, 0)
    # No ERR008: the declared column `edad`, not a header cell of its own, counts as the third.
    assert report["error_codes"] == ["ERR004"] == aws.items()[0][Item.ERROR_CODES]


def test_enormous_single_line_is_dropped_not_loaded(aws, monkeypatch):
    data = HEADER + b"1,BOGOTA,30\n" + b"x" * (3 << 20) + b"\n" + b"2,CALI,40\n"
    event = notify(aws, data)
    from handlers import csvprofile
    original = csvprofile.CsvProfiler.__init__

    def small_limit(self, column_types=None, **limits):
        original(self, column_types, line_limit=1 << 20)

    monkeypatch.setattr(csvprofile.CsvProfiler, "__init__", small_limit)
    criteria.handler(event, Context())
    report = stored_report(aws)
    assert report["counts"]["dropped_records"] == 1 and report["counts"]["rows"] == 2
    assert "dropped_records" in report["issues"] and "ERR005" in report["error_codes"]


def test_unexpected_error_fails_the_invocation(aws, monkeypatch):
    event = notify(aws, GOOD)

    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "UpdateItem")

    monkeypatch.setattr(criteria.client("dynamodb"), "update_item", throttled)
    with pytest.raises(ClientError):
        criteria.handler(event, Context())


def test_notification_without_an_item_fails(aws):
    event = notify(aws, GOOD)
    [item] = aws.items()
    aws.dynamodb.delete_item(TableName="ARTI4207-Dynamo-test",
                             Key={"HASH": {"S": item["HASH"]}, "ID": {"S": item["ID"]}})
    with pytest.raises(ClientError) as raised:
        criteria.handler(event, Context())
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    with pytest.raises(ClientError, match="NoSuchKey"):  # the item comes first: no report without it
        stored_report(aws)


def test_repeated_notification_overwrites_the_same_result(aws):
    event = notify(aws, GOOD)
    criteria.handler(event, Context())
    first, [item] = stored_report(aws), aws.items()
    # Spoil both results, so only a second write can bring them back.
    aws.s3.put_object(Bucket=BUCKET, Key=criteria_key("gt2j-8ykr"), Body=b"{}")
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    table.update_item(Key={Table.PARTITION_KEY: item[Table.PARTITION_KEY], Table.SORT_KEY: item[Table.SORT_KEY]},
                      UpdateExpression="SET #score = :spoilt", ExpressionAttributeNames={"#score": Item.QUALITY_SCORE},
                      ExpressionAttributeValues={":spoilt": -1})

    criteria.handler(event, Context())

    [again] = aws.items()
    assert stored_report(aws)["score"] == first["score"] and again[Item.QUALITY_SCORE] == item[Item.QUALITY_SCORE]


def notification(event: dict) -> DatasetNotification:
    return DatasetNotification.from_body(event["Records"][0]["Sns"]["Message"])


def test_report_names_the_hash_and_version_it_evaluated(aws):
    event = notify(aws, GOOD)
    criteria.handler(event, Context())
    report, sent = stored_report(aws), notification(event)
    assert (report["hash"], report["version_id"]) == (sent.HASH, sent.dataset.version_id)
    assert report["dataset_id"] == "gt2j-8ykr" and report["counts"]["rows"] == 60


def test_late_notification_of_an_older_version_leaves_the_current_report(aws, caplog):
    older = notify(aws, GOOD)
    newer = notify(aws, GOOD + GOOD[len(HEADER):])  # new content: a second item, 120 rows
    criteria.handler(newer, Context())
    current = stored_report(aws)

    criteria.handler(older, Context())  # an asynchronous retry (or a DLQ replay) lands late

    assert stored_report(aws) == current and current["counts"]["rows"] == 120
    assert current["version_id"] == notification(newer).dataset.version_id
    # The older version's own item still gets its evaluation.
    items = {item["HASH"]: item for item in aws.items()}
    assert items[notification(older).HASH][Item.CRITERIA]["_counts"]["rows"] == 60
    assert "not the current version" in logged(caplog)


def test_late_notification_for_an_item_now_holding_a_later_harvest_stores_nothing(aws, caplog):
    # The same bytes harvested twice: one item, which the later harvest took over. The first
    # harvest had no licence, so its evaluation differs (credibilidad).
    older = notify(aws, GOOD, harvested_at="2026-11-01T00:00:00Z", license="")
    newer = notify(aws, GOOD, harvested_at="2026-11-02T00:00:00Z")
    criteria.handler(newer, Context())
    [item], current = aws.items(), stored_report(aws)

    assert criteria.handler(older, Context()) == {"evaluated": ["gt2j-8ykr"]}  # nothing to retry

    assert aws.items() == [item] and item[Item.CRITERIA]["credibilidad"]["score"] == 10
    assert stored_report(aws) == current
    assert "superseded by a later harvest" in logged(caplog)


def test_unversioned_bucket_stores_the_report(aws, monkeypatch):
    monkeypatch.setenv(LambdaEnv.BUCKET, "unversioned-bucket")
    aws.s3.create_bucket(Bucket="unversioned-bucket")
    aws.s3.put_object(Bucket="unversioned-bucket", Key=dataset_key("gt2j-8ykr"), Body=GOOD)
    message = harvest_message("gt2j-8ykr", GOOD, bucket="unversioned-bucket", update_frequency="No aplica")
    metadata.handler(sqs_event(sqs_record(message.to_body())), Context())
    [published] = aws.published()

    criteria.handler(sns_event(json.dumps(published), aws.topic_arn), Context())

    report = stored_report(aws, bucket="unversioned-bucket")
    assert report["version_id"] in (None, "null") and report["counts"]["rows"] == 60
    assert aws.items()[0][Item.QUALITY_SCORE] == Decimal(str(report["score"]))


@pytest.mark.parametrize("version, current, missing, expected", [
    ("v2", "v2", False, True),
    ("v1", "v2", False, False),  # a later version is current: its report stays
    ("v1", "v2", True, False),  # the evaluated version is gone, but the key holds a later one
    (None, "null", False, True),  # unversioned: the only object there is
    ("v1", None, True, True),  # no object under the key, and the evaluation found none
    ("v1", None, False, False),  # no object under the key now: a report of its contents is stale
])
def test_criteria_json_describes_the_current_object_only(version, current, missing, expected):
    assert criteria.describes_current(version, current, missing) is expected
