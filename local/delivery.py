"""What Lambda's own machinery does in AWS, done locally: the emulator runs no functions.

- `SqsEventSourceMapping` polls the queue like Lambda's event source mapping: batches of
  `batch_size`, the SQS event shape, `batchItemFailures` honoured (only the reported records are
  retried; an exception retries the whole batch), redelivery after the visibility timeout, and
  the queue's redrive policy moving a message to the DLQ after `maxReceiveCount` receives.
- `SnsAsyncInvoker` stands in for an SNS subscription of protocol `lambda`: it receives what the
  topic published (through an SQS tap queue subscribed to the topic in the emulator), invokes the
  handler with the SNS event shape, retries a failed invocation `retry_attempts` times like
  Lambda's asynchronous invocation, then sends the on-failure destination record to the DLQ.

Waiting out a real visibility timeout (12 minutes by default) would make the demo useless, so a
failed record is made visible again at once with ChangeMessageVisibility(0): the receive count,
the redrive and the DLQ behave as in AWS, only faster.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

Handler = Callable[[dict, Any], Any]


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 128
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class Invocation:
    """One handler call and what came of it, for the report."""

    function: str
    record_ids: list[str]
    failed_ids: list[str]
    error: str = ""


def queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def sqs_event(messages: list[dict], queue_arn: str, region: str) -> dict:
    """The event Lambda's SQS event source mapping passes to a function."""
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {name: _message_attribute(value) for name, value in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


def _message_attribute(value: dict) -> dict:
    """An SQS message attribute as the event carries it: the value present (binary as base64
    text), the other omitted."""
    attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def sns_event(envelope: dict, subscription_arn: str) -> dict:
    """The event SNS passes to a subscribed function, built from the topic's delivery envelope."""
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": envelope.get("Type", "Notification"),
            "MessageId": envelope["MessageId"],
            "TopicArn": envelope["TopicArn"],
            "Subject": envelope.get("Subject"),
            "Message": envelope["Message"],
            "Timestamp": envelope["Timestamp"],
            "SignatureVersion": envelope.get("SignatureVersion", "1"),
            "Signature": envelope.get("Signature", ""),
            "SigningCertUrl": envelope.get("SigningCertURL", ""),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
            "MessageAttributes": envelope.get("MessageAttributes", {}),
        },
    }]}


class SqsEventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, handler: Handler, *,
                 function_name: str, batch_size: int, region: str = "us-east-1") -> None:
        self.sqs, self.queue_url, self.queue_arn = sqs, queue_url, queue_arn
        self.handler, self.function_name = handler, function_name
        self.batch_size, self.region = batch_size, region

    def pending(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(value) for value in attributes.values())

    def poll_once(self) -> Invocation | None:
        """Receive one batch, invoke the handler, settle each record. None when the queue is empty."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=0,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return None
        ids = [m["MessageId"] for m in messages]
        context = LambdaContext(self.function_name, region=self.region)
        try:
            response = self.handler(sqs_event(messages, self.queue_arn, self.region), context) or {}
            # A missing, null or empty list means every record succeeded.
            failed = [item["itemIdentifier"] for item in response.get("batchItemFailures") or []]
            if any(not isinstance(i, str) or i not in ids for i in failed):
                # Lambda treats an empty or unknown itemIdentifier as a failure of the whole batch.
                failed, error = ids, f"invalid batchItemFailures: {response!r}"
            else:
                error = ""
        except Exception as exc:  # a raising handler fails the whole batch, as in Lambda
            failed, error = ids, f"{type(exc).__name__}: {exc}"
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=self.queue_url,
                                                   ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=0)
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return Invocation(self.function_name, ids, failed, error)

    def drain(self, max_invocations: int = 100_000) -> Iterator[Invocation]:
        """Poll until the queue is empty (failed messages come back until the DLQ takes them)."""
        for _ in range(max_invocations):
            invocation = self.poll_once()
            if invocation is None:
                if self.pending() == 0:
                    return
                continue
            yield invocation
        raise RuntimeError(f"{self.function_name}: queue not drained after {max_invocations} batches")


class SnsAsyncInvoker:
    def __init__(self, sqs: Any, sns: Any, topic_arn: str, handler: Handler, *, function_name: str,
                 retry_attempts: int, dead_letter_queue_url: str, region: str = "us-east-1") -> None:
        self.sqs, self.sns, self.handler, self.function_name = sqs, sns, handler, function_name
        self.retry_attempts, self.dead_letter_queue_url = retry_attempts, dead_letter_queue_url
        self.region = region
        # The tap queue is local plumbing, not part of the stack: it holds what SNS would push.
        self.tap_url = sqs.create_queue(QueueName=f"{function_name}-local-sns-tap")["QueueUrl"]
        tap_arn = queue_arn(sqs, self.tap_url)
        self.subscription_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs",
                                              Endpoint=tap_arn)["SubscriptionArn"]

    def unsubscribe(self) -> None:
        self.sns.unsubscribe(SubscriptionArn=self.subscription_arn)
        self.sqs.delete_queue(QueueUrl=self.tap_url)

    def invoke(self, event: dict) -> Invocation:
        message_id = event["Records"][0]["Sns"]["MessageId"]
        error = ""
        for _attempt in range(1 + self.retry_attempts):
            try:
                self.handler(event, LambdaContext(self.function_name, region=self.region))
                return Invocation(self.function_name, [message_id], [])
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
        self.send_on_failure(self._on_failure_record(event, error))
        return Invocation(self.function_name, [message_id], [message_id], error)

    def send_on_failure(self, record: dict) -> None:
        """What Lambda does after the last retry, with the function's execution role."""
        self.sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=json.dumps(record))

    def drain(self) -> Iterator[Invocation]:
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.tap_url, MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0).get("Messages", [])
            if not messages:
                return
            for message in messages:
                yield self.invoke(sns_event(json.loads(message["Body"]), self.subscription_arn))
                self.sqs.delete_message(QueueUrl=self.tap_url, ReceiptHandle=message["ReceiptHandle"])

    def _on_failure_record(self, event: dict, error: str) -> dict:
        """The record Lambda sends to an on-failure destination after the retries."""
        error_type, _, message = error.partition(": ")
        return {
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": LambdaContext(self.function_name, region=self.region).invoked_function_arn + ":$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 1 + self.retry_attempts,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                                "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": message, "errorType": error_type},
        }
