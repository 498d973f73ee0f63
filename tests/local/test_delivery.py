"""The local stand-ins for Lambda's SQS event source mapping and SNS asynchronous invocation."""

from __future__ import annotations

import json

from local.delivery import SnsAsyncInvoker, SqsEventSourceMapping


def _mapping(local_aws, handler, batch_size=1):
    r = local_aws.resources
    return SqsEventSourceMapping(local_aws.client("sqs"), r.queue_url, r.queue_arn, handler,
                                 function_name="fn", batch_size=batch_size)


def _dead_letters(local_aws, url):
    sqs = local_aws.client("sqs")
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


def test_each_batch_has_the_sqs_event_shape_and_batch_size(local_aws):
    sqs = local_aws.client("sqs")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=local_aws.resources.queue_url, MessageBody=body)
    events = []
    invocations = list(_mapping(local_aws, lambda event, context: events.append(event), batch_size=2).drain())

    assert sorted(len(e["Records"]) for e in events) == [1, 2]
    record = events[0]["Records"][0]
    assert set(record) >= {"messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                           "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == local_aws.resources.queue_arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert all(not i.failed_ids for i in invocations)
    assert _dead_letters(local_aws, local_aws.resources.dead_letter_queue_url) == []


def test_reported_failures_are_redelivered_until_the_dlq_takes_them(local_aws):
    sqs = local_aws.client("sqs")
    for body in ("good", "poison"):
        sqs.send_message(QueueUrl=local_aws.resources.queue_url, MessageBody=body)
    seen: list[str] = []

    def handler(event, context):
        seen.extend(r["body"] for r in event["Records"])
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                      for r in event["Records"] if r["body"] == "poison"]}

    list(_mapping(local_aws, handler).drain())

    max_receives = local_aws.config.max_receive_count  # 5 in the dev stack
    assert seen.count("good") == 1
    assert seen.count("poison") == max_receives
    dead = _dead_letters(local_aws, local_aws.resources.dead_letter_queue_url)
    assert [m["Body"] for m in dead] == ["poison"]


def test_a_raising_handler_or_an_unknown_item_identifier_fails_the_whole_batch(local_aws):
    sqs = local_aws.client("sqs")
    sqs.send_message(QueueUrl=local_aws.resources.queue_url, MessageBody="x")
    mapping = _mapping(local_aws, lambda event, context: {"batchItemFailures": [{"itemIdentifier": ""}]})
    first = mapping.poll_once()
    assert first.failed_ids == first.record_ids and "invalid batchItemFailures" in first.error

    mapping.handler = lambda event, context: 1 / 0
    second = mapping.poll_once()
    assert second.failed_ids == second.record_ids and second.error.startswith("ZeroDivisionError")


def test_sns_invocations_are_retried_then_sent_to_the_on_failure_destination(local_aws):
    r = local_aws.resources
    sns = local_aws.client("sns")
    calls = []

    def handler(event, context):
        calls.append(event)
        message = event["Records"][0]["Sns"]["Message"]
        if message == "fails":
            raise ValueError("cannot evaluate")

    invoker = SnsAsyncInvoker(local_aws.client("sqs"), sns, r.topic_arn, handler, function_name="crit",
                              retry_attempts=2, dead_letter_queue_url=r.criteria_dead_letter_queue_url)
    sns.publish(TopicArn=r.topic_arn, Message="fine", Subject="s")
    sns.publish(TopicArn=r.topic_arn, Message="fails")
    invocations = list(invoker.drain())

    record = calls[0]["Records"][0]
    assert record["EventSource"] == "aws:sns" and record["Sns"]["TopicArn"] == r.topic_arn
    assert [c["Records"][0]["Sns"]["Message"] for c in calls] == ["fine"] + ["fails"] * 3  # 1 + 2 retries
    assert [bool(i.failed_ids) for i in invocations] == [False, True]
    dead = _dead_letters(local_aws, r.criteria_dead_letter_queue_url)
    assert len(dead) == 1
    failure = json.loads(dead[0]["Body"])
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["functionArn"].endswith(":function:crit:$LATEST")  # qualified, as AWS sends it
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["requestPayload"]["Records"][0]["Sns"]["Message"] == "fails"
    assert failure["responsePayload"] == {"errorMessage": "cannot evaluate", "errorType": "ValueError"}


def test_a_null_batch_item_failures_list_means_every_record_succeeded(local_aws):
    sqs = local_aws.client("sqs")
    sqs.send_message(QueueUrl=local_aws.resources.queue_url, MessageBody="x")
    invocation = _mapping(local_aws, lambda event, context: {"batchItemFailures": None}).poll_once()
    assert invocation.failed_ids == [] and invocation.error == ""
    assert _mapping(local_aws, lambda event, context: None).poll_once() is None  # deleted, not redelivered


def test_message_attributes_carry_only_the_value_they_have_binary_as_base64(local_aws):
    sqs = local_aws.client("sqs")
    sqs.send_message(QueueUrl=local_aws.resources.queue_url, MessageBody="x", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "harvest"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    events = []
    _mapping(local_aws, lambda event, context: events.append(event)).poll_once()
    attributes = events[0]["Records"][0]["messageAttributes"]
    assert attributes["kind"] == {"stringValue": "harvest", "stringListValues": [], "binaryListValues": [],
                                  "dataType": "String"}
    assert attributes["blob"] == {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [],
                                  "dataType": "Binary"}
