"""Criteria Lambda: SNS (one notification per processed dataset) -> quality report.

For each record: read the notification (`contract.messages.DatasetNotification`), stream the
object's exact version through `handlers.quality.evaluate` (one pass, bounded memory), then
store the report twice: on the dataset's item (UpdateItem, condition `attribute_exists`:
a `criteria` map, `quality_score`, `error_codes`, `evaluated_at`; numbers as Decimal) and as
JSON at `contract.criteria_key(ID)`, next to the data.

Failure policy (SNS invokes asynchronously: 2 retries, then the on-failure destination, an SQS
queue that keeps the event):
- A malformed notification is logged at error level and RAISES: retries cannot fix it, but
  raising is what lands the event in the on-failure queue, where it stays visible and replayable.
  Dropping it silently would lose the dataset's evaluation.
- A missing object (NoSuchKey/NoSuchVersion) is an expected outcome, not an error of this code:
  the report is stored with disponibilidad 0 and the issue `object_missing` (and logged at error
  level), so the dataset's item shows why it has no data scores.
- Bad bytes (not UTF-8, ragged rows, empty, header-only, an enormous line) are scored, with
  error codes and issues in the report.
- Anything else (throttling, a missing item, permissions) raises: Lambda retries, then the
  on-failure destination keeps the event.
Re-evaluating the same notification overwrites the same result, so duplicates are harmless.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.data_classes.sns_event import SNSEventRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from contract import Item, LambdaEnv, Table, criteria_key
from contract.messages import DatasetNotification, InvalidMessage
from handlers.clients import client, env
from handlers.digest import CHUNK_SIZE
from handlers.quality import QualityReport, evaluate, score

logger = Logger()
MISSING_OBJECT = ("NoSuchKey", "NoSuchVersion", "404")


def to_decimal(value: Any) -> Any:
    """JSON-like values with every float as Decimal (DynamoDB rejects floats)."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {str(k): to_decimal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_decimal(v) for v in value]
    return value


def item_update(report: QualityReport) -> dict[str, Any]:
    """UpdateItem arguments (besides table and key) storing a report on the dataset's item."""
    serialize = TypeSerializer().serialize
    criteria = {c.name: {"score": c.score, "inputs": c.inputs} for c in report.criteria}
    criteria["_issues"] = list(report.issues)  # type: ignore[assignment]
    criteria["_counts"] = report.counts  # type: ignore[assignment]
    values = {":criteria": criteria, ":score": report.score, ":codes": list(report.error_codes),
              ":at": report.evaluated_at}
    return {
        "UpdateExpression": "SET #criteria = :criteria, #score = :score, #codes = :codes, #at = :at",
        "ConditionExpression": "attribute_exists(#hash)",
        "ExpressionAttributeNames": {"#criteria": Item.CRITERIA, "#score": Item.QUALITY_SCORE,
                                     "#codes": Item.ERROR_CODES, "#at": Item.EVALUATED_AT,
                                     "#hash": Table.PARTITION_KEY},
        "ExpressionAttributeValues": {k: serialize(to_decimal(v)) for k, v in values.items()},
    }


def evaluate_object(notification: DatasetNotification, now: datetime) -> QualityReport:
    dataset = notification.dataset
    request = {"Bucket": dataset.bucket, "Key": dataset.key,
               **({"VersionId": dataset.version_id} if dataset.version_id else {})}
    try:
        response = client("s3").get_object(**request)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in MISSING_OBJECT:
            raise
        logger.error("Stored object is missing: scoring it as unavailable",
                     extra={"reason": code, "key": dataset.key, "version_id": dataset.version_id})
        return score(None, dataset, now)
    body = response["Body"]
    try:
        return evaluate(body.iter_chunks(chunk_size=CHUNK_SIZE), dataset, now)
    finally:
        body.close()


def store_report(notification: DatasetNotification, report: QualityReport) -> None:
    dataset = notification.dataset
    client("s3").put_object(
        Bucket=env(LambdaEnv.BUCKET), Key=criteria_key(dataset.ID), ContentType="application/json",
        Body=json.dumps(report.to_dict(), ensure_ascii=False, indent=2).encode(),
    )
    client("dynamodb").update_item(
        TableName=env(LambdaEnv.TABLE_NAME),
        Key={Table.PARTITION_KEY: {"S": notification.HASH}, Table.SORT_KEY: {"S": dataset.ID}},
        **item_update(report),
    )


def process_record(record: SNSEventRecord, now: datetime) -> QualityReport:
    logger.remove_keys(["dataset_id"])
    try:
        notification = DatasetNotification.from_body(record.sns.message)
        if notification.dataset.bucket != env(LambdaEnv.BUCKET):
            raise InvalidMessage(f"bucket {notification.dataset.bucket!r} is not the configured bucket")
    except InvalidMessage as error:
        logger.error("Malformed notification: failing so it reaches the on-failure destination",
                     extra={"reason": str(error), "sns_message_id": record.sns.message_id})
        raise
    logger.append_keys(dataset_id=notification.ID)
    report = evaluate_object(notification, now)
    store_report(notification, report)
    logger.info("Dataset evaluated", extra={"score": report.score, "error_codes": report.error_codes,
                                            "issues": report.issues})
    return report


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict:
    now = datetime.now(timezone.utc)
    reports = [process_record(record, now) for record in event.records]
    return {"evaluated": [r.dataset_id for r in reports]}
