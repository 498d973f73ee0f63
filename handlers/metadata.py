"""Metadata Lambda: SQS (one message per stored dataset) -> DynamoDB item -> SNS notification.

For each record: validate the harvester's message (`contract.messages.HarvestMessage`, and the
key must be `dataset_key(ID)` inside the configured BUCKET), stream the object's exact version
once through SHA-256 + byte count + record count (`handlers.digest`, 1 MiB chunks: memory flat
whatever the size), write the item, THEN publish. A record that fails (malformed body, missing
object, AWS error) is reported in `batchItemFailures` by Powertools' BatchProcessor; the other
records succeed; after `maxReceiveCount` receives SQS moves it to the DLQ.

Exactly-once effects under SQS's at-least-once delivery, and the item of a HASH + ID following
the object's CURRENT version (the criteria Lambda writes `criteria.json` only for the current
version, and stores a result only on the item of the version it evaluated):
1. HeadObject on the key (no VersionId), just before the write: is the version read the key's
   current one? S3 makes a version current when its upload COMPLETES, and no timestamp gives that
   order: `harvested_at` is taken when a download starts (overlapping runs complete in either
   order) and a multipart upload's LastModified is its initiation. No object (404, e.g. a delete
   marker: the role has s3:ListBucket) is "not current"; an unversioned object ("") is current.
   Any other error, a 403 included (a permission problem), fails the record before any write.
2. PutItem. Current: `attribute_not_exists(HASH) OR version_id <> :v`: the current version's
   item replaces any other version's item of the same bytes and is announced again, so its
   criteria are evaluated and reach `criteria.json`. Not current: `attribute_not_exists(HASH)`:
   it never replaces an item, so a late duplicate, a DLQ replay of an old harvest or the
   overlapping run whose upload completed first cannot roll the item back (wiping the current
   version's criteria); the first item for those bytes is still recorded and announced. Either
   way a redelivery of the same version changes nothing.
3. When that condition fails, read the item (strongly consistent): if it holds another version,
   this message is superseded and the record is done, unpublished. Else, if `notified_at` is
   set the notification went out already and the record is done; if it is missing, the earlier
   attempt stopped between the item and the publish, so this one publishes.
4. Publish, then UpdateItem `SET notified_at` on condition that the item still holds this
   version: a newer version of the same bytes may have replaced it meanwhile, and its own
   publish may have failed; marking its item notified would make its redelivery a "duplicate"
   and the current version would never be evaluated.
Races: a version that becomes current between steps 1 and 2 completed its upload after step 1;
the harvester sends its message after that, so it is processed later, finds itself current and
replaces the item (only a stall between steps 1 and 2 longer than that whole processing loses).
The one remaining at-least-once window: a crash after the publish and before step 4 (or two
deliveries running at once, which the 6x visibility timeout makes unlikely) publishes twice.
The criteria Lambda tolerates that: it stores a result only for the version the item holds.
"""

from __future__ import annotations

from datetime import datetime, timezone
import logging
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from contract import Item, LambdaEnv, Table
from contract.messages import DatasetNotification, HarvestMessage, InvalidMessage
from handlers.clients import client, env
from handlers.digest import CHUNK_SIZE, ObjectDigest, digest_chunks

logger = Logger()
# `logger`: each failed record is logged (a warning with its traceback and this record's keys).
# Without it Powertools logs a failure at debug level only, and a partial batch (batchSize > 1)
# is a successful invocation Lambda logs nothing about: a record failing on, say, Publish would
# reach the DLQ with no word in the log of why. (Typed as a logging.Logger; Powertools' Logger has
# the one call it makes, warning(msg, exc_info=...), and keeps the JSON format and the keys.)
processor = BatchProcessor(event_type=EventType.SQS, logger=cast(logging.Logger, logger))
# HeadObject of a key with no current object, for a role with s3:ListBucket (this one); without
# it S3 would answer 403, which here can only mean a permission problem: that one fails the record.
NO_CURRENT_OBJECT = ("404", "NoSuchKey")


# Pure parts.
def parse_message(body: str, bucket: str) -> HarvestMessage:
    message = HarvestMessage.from_body(body)
    message.check_location(bucket)
    return message


def build_item(message: HarvestMessage, digest: ObjectDigest, version_id: str, processed_at: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        Table.PARTITION_KEY: digest.sha256, Table.SORT_KEY: message.ID,
        Item.OWNER: message.OWNER, Item.NAME: message.NAME, Item.EMAIL: message.EMAIL,
        Item.CATEGORY: message.CATEGORY,
        Item.BUCKET: message.bucket, Item.KEY: message.key, Item.VERSION_ID: version_id,
        Item.SIZE: digest.size, Item.ROWS: digest.rows,
        Item.HARVESTED_AT: message.harvested_at, Item.PROCESSED_AT: processed_at,
    }
    if message.source_updated_at is not None:
        item[Item.SOURCE_UPDATED_AT] = message.source_updated_at
    return item


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# AWS edges.
def digest_object(bucket: str, key: str, version_id: str | None) -> tuple[ObjectDigest, str]:
    """Streams the object; returns its digest and the version actually read ("" if unversioned)."""
    request = {"Bucket": bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
    response = client("s3").get_object(**request)
    body = response["Body"]
    try:
        digest = digest_chunks(body.iter_chunks(chunk_size=CHUNK_SIZE))
    finally:
        body.close()
    return digest, response.get("VersionId") or version_id or ""


def is_current(bucket: str, key: str, version_id: str) -> bool:
    """Whether `version_id` ("" if unversioned) is the key's current version (docstring step 1)."""
    try:
        response = client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response["Error"]["Code"] not in NO_CURRENT_OBJECT:
            raise
        logger.info("The key has no current object: the item is not replaced")
        return False
    return (response.get("VersionId") or "") == version_id


def put_condition(version_id: str, current: bool) -> dict[str, Any]:
    """PutItem condition arguments (docstring step 2): only the current version replaces an item."""
    if not current:
        return {"ConditionExpression": "attribute_not_exists(#hash)",
                "ExpressionAttributeNames": {"#hash": Table.PARTITION_KEY}}
    return {"ConditionExpression": "attribute_not_exists(#hash) OR #version <> :version",
            "ExpressionAttributeNames": {"#hash": Table.PARTITION_KEY, "#version": Item.VERSION_ID},
            "ExpressionAttributeValues": {":version": {"S": version_id}}}


def store_and_notify(item: dict[str, Any], notification: DatasetNotification, current: bool) -> bool:
    """Steps 2-4 of the module docstring; True when this call published."""
    table, dynamodb = env(LambdaEnv.TABLE_NAME), client("dynamodb")
    key = {Table.PARTITION_KEY: {"S": item[Table.PARTITION_KEY]}, Table.SORT_KEY: {"S": item[Table.SORT_KEY]}}
    try:
        dynamodb.put_item(TableName=table, Item=_to_dynamodb(item), **put_condition(item[Item.VERSION_ID], current))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        stored = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
        stored_version = stored.get(Item.VERSION_ID, {}).get("S")
        if stored and stored_version != item[Item.VERSION_ID]:
            logger.info("Message superseded: the item holds another version of these bytes, which this "
                        "one may not replace; item and notification left as they are",
                        extra={"version_id": item[Item.VERSION_ID], "current": current, "stored_version_id": stored_version,
                               "stored_harvested_at": stored.get(Item.HARVESTED_AT, {}).get("S")})
            return False
        if Item.NOTIFIED_AT in stored:
            logger.info("Duplicate delivery: item stored and notified already")
            return False
        logger.warning("Item stored by an earlier attempt that did not notify: notifying now")
    client("sns").publish(TopicArn=env(LambdaEnv.TOPIC_ARN), Message=notification.to_body())
    try:
        dynamodb.update_item(
            TableName=table, Key=key, UpdateExpression="SET #notified = :now", ConditionExpression="#version = :version",
            ExpressionAttributeNames={"#notified": Item.NOTIFIED_AT, "#version": Item.VERSION_ID},
            ExpressionAttributeValues={":now": {"S": now_iso()}, ":version": {"S": item[Item.VERSION_ID]}},
        )
    except ClientError as error:
        if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        logger.info("Published; the item now holds another version, whose own message notifies it",
                    extra={"version_id": item[Item.VERSION_ID]})
    return True


def _to_dynamodb(item: dict[str, Any]) -> dict[str, Any]:
    return {k: {"N": str(v)} if isinstance(v, int) else {"S": str(v)} for k, v in item.items()}


def record_handler(record: SQSRecord) -> None:
    logger.remove_keys(["dataset_id", "message_id"])  # keys of the previous record of the batch
    try:
        message = parse_message(record.body, env(LambdaEnv.BUCKET))
    except InvalidMessage as error:
        logger.error("Malformed message", extra={"reason": str(error), "message_id": record.message_id})
        raise
    logger.append_keys(dataset_id=message.ID, message_id=record.message_id)
    try:
        digest, version_id = digest_object(message.bucket, message.key, message.version_id)
    except ClientError as error:
        logger.error("Cannot read the stored object", extra={
            "reason": error.response["Error"]["Code"], "key": message.key, "version_id": message.version_id})
        raise
    if (digest.size, digest.rows) != (message.size, message.rows):
        logger.warning("Object differs from the harvester's figures", extra={
            "size": digest.size, "harvested_size": message.size, "rows": digest.rows, "harvested_rows": message.rows})
    processed_at = now_iso()
    item = build_item(message, digest, version_id, processed_at)
    dataset = HarvestMessage(**{**message.__dict__, "version_id": version_id or None})
    current = is_current(message.bucket, message.key, version_id)
    notification = DatasetNotification(HASH=digest.sha256, processed_at=processed_at, dataset=dataset)
    published = store_and_notify(item, notification, current)
    logger.info("Dataset processed", extra={"hash": digest.sha256, "size": digest.size, "rows": digest.rows,
                                            "version_id": version_id, "current": current, "published": published})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
