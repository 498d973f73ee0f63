"""Criteria Lambda: SNS (one notification per processed dataset) -> quality report.

For each record: read the notification (`contract.messages.DatasetNotification`), stream the
object's exact version through `handlers.quality.evaluate` (one pass, bounded memory), then
store the report twice, in this order:
1. On the dataset's item (UpdateItem: a `criteria` map, `quality_score`, `error_codes`,
   `evaluated_at`; numbers as Decimal), on condition `attribute_exists(HASH) AND version_id = :v`.
   The item (key HASH + ID) may since hold a later harvest of the same bytes (the metadata Lambda
   replaces it): then this notification is superseded, its result is logged and dropped, and the
   invocation succeeds. An item that does not exist fails the invocation (see below).
2. Only once the item took it, as JSON at `contract.criteria_key(ID)`, next to the data, with
   the evaluated `hash` and `version_id` added: one such file per dataset, so it is written only
   when a HeadObject says the evaluated version is still the key's current one (an unversioned
   bucket's is always current; a key with no object left takes a report that found none). A late
   or replayed notification of an older version therefore updates that version's own item but
   never replaces the report of the newer one.

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
from contract.messages import DatasetNotification, HarvestMessage, InvalidMessage
from handlers.clients import client, env
from handlers.digest import CHUNK_SIZE
from handlers.quality import NULL_VERSION, OBJECT_MISSING, QualityReport, evaluate, score

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


# A DynamoDB item holds at most 400 KB, and a report's lists of column names grow with the header
# (3,000 columns, each flagged, made an item of over 400 KB: every attempt failed, then the DLQ).
# On the item each list and map keeps its first ITEM_ENTRIES entries and each text its first
# ITEM_TEXT characters, and the criterion is marked `shortened`; criteria.json keeps them whole.
ITEM_ENTRIES = 50
ITEM_TEXT = 256


def shortened(value: Any) -> tuple[Any, bool]:
    """`value` within the item's bounds, and whether anything was cut."""
    if isinstance(value, str):
        return value[:ITEM_TEXT], len(value) > ITEM_TEXT
    if isinstance(value, dict):
        pairs = [(shortened(k), shortened(v)) for k, v in list(value.items())[:ITEM_ENTRIES]]
        return ({k: v for (k, _), (v, _) in pairs},
                len(value) > ITEM_ENTRIES or any(cut_k or cut_v for (_, cut_k), (_, cut_v) in pairs))
    if isinstance(value, (list, tuple)):
        items = [shortened(v) for v in value[:ITEM_ENTRIES]]
        return [v for v, _ in items], len(value) > ITEM_ENTRIES or any(cut for _, cut in items)
    return value, False


def item_criterion(score: float, inputs: dict[str, Any]) -> dict[str, Any]:
    kept, cut = shortened(inputs)
    return {"score": score, "inputs": kept, **({"shortened": True} if cut else {})}


def item_update(report: QualityReport, version_id: str | None) -> dict[str, Any]:
    """UpdateItem arguments (besides table and key) storing a report on the dataset's item, if the
    item still holds the evaluated version (the metadata Lambda stores `version_id or ""`)."""
    serialize = TypeSerializer().serialize
    criteria = {c.name: item_criterion(c.score, c.inputs) for c in report.criteria}
    criteria["_issues"] = list(report.issues)  # type: ignore[assignment]
    criteria["_counts"] = report.counts  # type: ignore[assignment]
    values = {":criteria": criteria, ":score": report.score, ":codes": list(report.error_codes),
              ":at": report.evaluated_at, ":version": version_id or ""}
    return {
        "UpdateExpression": "SET #criteria = :criteria, #score = :score, #codes = :codes, #at = :at",
        "ConditionExpression": "attribute_exists(#hash) AND #version = :version",
        "ExpressionAttributeNames": {"#criteria": Item.CRITERIA, "#score": Item.QUALITY_SCORE,
                                     "#codes": Item.ERROR_CODES, "#at": Item.EVALUATED_AT,
                                     "#hash": Table.PARTITION_KEY, "#version": Item.VERSION_ID},
        "ExpressionAttributeValues": {k: serialize(to_decimal(v)) for k, v in values.items()},
        # On a failed condition the item as it is now tells "missing" from "another version".
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def report_document(notification: DatasetNotification, report: QualityReport) -> dict[str, Any]:
    """The JSON stored at `criteria_key(ID)`: the report plus what was evaluated, so a reader can
    tell which version it describes."""
    return {**report.to_dict(), "hash": notification.HASH, "version_id": notification.dataset.version_id}


def describes_current(version_id: str | None, current: str | None, object_missing: bool) -> bool:
    """Whether `criteria.json` may show this evaluation: the evaluated version is the key's
    current one (`current`, HeadObject's; an unversioned object's is always current) or, when the
    key has no object now (`current` None), the evaluation found none either."""
    if current is None:
        return object_missing
    return current == NULL_VERSION or current == version_id


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


def update_item(notification: DatasetNotification, report: QualityReport) -> bool:
    """Stores the report on the item; False when the item now holds another version."""
    dataset = notification.dataset
    try:
        client("dynamodb").update_item(
            TableName=env(LambdaEnv.TABLE_NAME),
            Key={Table.PARTITION_KEY: {"S": notification.HASH}, Table.SORT_KEY: {"S": dataset.ID}},
            **item_update(report, dataset.version_id),
        )
    except ClientError as error:
        stored = error.response.get("Item")
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException" or not stored:
            raise  # no item (yet): retried, then kept by the on-failure destination
        logger.info("Notification superseded by a later harvest: result not stored", extra={
            "version_id": dataset.version_id, "stored_version_id": stored.get(Item.VERSION_ID, {}).get("S")})
        return False
    return True


def current_version(dataset: HarvestMessage) -> str | None:
    """The dataset key's current version id ("null" when unversioned); None when it has no object."""
    try:
        response = client("s3").head_object(Bucket=dataset.bucket, Key=dataset.key)
    except ClientError as error:
        if error.response["Error"]["Code"] not in MISSING_OBJECT:
            raise
        return None
    return response.get("VersionId") or NULL_VERSION


def store_report(notification: DatasetNotification, report: QualityReport) -> bool:
    """The item first, then `criteria.json` if still current; False when superseded."""
    dataset = notification.dataset
    if not update_item(notification, report):
        return False
    current = current_version(dataset)
    if not describes_current(dataset.version_id, current, OBJECT_MISSING in report.issues):
        logger.info("Evaluated version is not the current version: criteria.json not replaced",
                    extra={"version_id": dataset.version_id, "current_version_id": current})
        return True
    client("s3").put_object(
        Bucket=env(LambdaEnv.BUCKET), Key=criteria_key(dataset.ID), ContentType="application/json",
        Body=json.dumps(report_document(notification, report), ensure_ascii=False, indent=2).encode(),
    )
    return True


def parse_notification(body: str, bucket: str) -> DatasetNotification:
    """The notification, if it names a stored dataset of this stack (as the metadata Lambda checks
    its message)."""
    notification = DatasetNotification.from_body(body)
    notification.dataset.check_location(bucket)
    return notification


def process_record(record: SNSEventRecord, now: datetime) -> QualityReport:
    logger.remove_keys(["dataset_id"])
    try:
        notification = parse_notification(record.sns.message, env(LambdaEnv.BUCKET))
    except InvalidMessage as error:
        logger.error("Malformed notification: failing so it reaches the on-failure destination",
                     extra={"reason": str(error), "sns_message_id": record.sns.message_id})
        raise
    logger.append_keys(dataset_id=notification.ID)
    report = evaluate_object(notification, now)
    if store_report(notification, report):
        logger.info("Dataset evaluated", extra={"score": report.score, "error_codes": report.error_codes,
                                                "issues": report.issues})
    return report


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=SNSEvent)
def handler(event: SNSEvent, context: LambdaContext) -> dict:
    now = datetime.now(timezone.utc)
    reports = [process_record(record, now) for record in event.records]
    return {"evaluated": [r.dataset_id for r in reports]}
