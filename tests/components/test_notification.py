"""Notification component under Pulumi mocks: the criteria Lambda on the topic (PoC step 10)."""

from __future__ import annotations

import json

import pytest

from components.config import PipelineConfig
from components.notification import Notification, NotificationArgs
from contract import LambdaEnv, Services
from tests.pulumi_mocks import ACCOUNT, REGION, deploy

BUCKET = "arti4207-poc-2023"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ARTI4207-Dynamo"
TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ARTI4207-topico"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ARTI4207-Lambda-Criterio"
DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ARTI4207-Lambda-Criterio-dlq"
TOPIC_DLQ_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ARTI4207-topico-dlq"
ALERT_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ARTI4207-alertas"


def notification(config: PipelineConfig):
    return deploy(lambda: Notification("notification", NotificationArgs(
        config=config, bucket_name=BUCKET, bucket_arn=f"arn:aws:s3:::{BUCKET}",
        table_name="ARTI4207-Dynamo", table_arn=TABLE_ARN, topic_arn=TOPIC_ARN, alert_topic_arn=ALERT_TOPIC_ARN)))


@pytest.fixture(scope="module")
def dev():
    return notification(PipelineConfig.from_stack_file("dev"))


def test_every_child_has_the_notification_component_as_parent(dev):
    children = [r for r in dev.resources if r.type != "arti4207:notification:Notification"]
    assert children and {r.parent_type for r in children} == {"arti4207:notification:Notification"}


def test_criteria_function_settings_come_from_config(dev):
    fn = dev.one("aws:lambda/function:Function").inputs
    assert fn["name"] == "ARTI4207-Lambda-Criterio"
    assert fn["handler"] == "handlers.criteria.handler"
    assert (fn["runtime"], fn["memorySize"], fn["timeout"]) == ("python3.11", 512, 300)
    assert fn["environment"]["variables"] == {
        LambdaEnv.TABLE_NAME: "ARTI4207-Dynamo", LambdaEnv.BUCKET: BUCKET,
        LambdaEnv.POWERTOOLS_SERVICE_NAME: Services.CRITERIA}
    assert dev.one("aws:cloudwatch/logGroup:LogGroup").inputs == {
        "name": "/aws/lambda/ARTI4207-Lambda-Criterio", "retentionInDays": 30}


def test_topic_invokes_the_function_and_only_that_topic_may(dev):
    subscription = dev.one("aws:sns/topicSubscription:TopicSubscription").inputs
    assert subscription == {"topic": TOPIC_ARN, "protocol": "lambda", "endpoint": FUNCTION_ARN,
                            "redrivePolicy": json.dumps({"deadLetterTargetArn": TOPIC_DLQ_ARN})}
    permission = dev.one("aws:lambda/permission:Permission").inputs
    assert permission["principal"] == "sns.amazonaws.com"
    assert permission["sourceArn"] == TOPIC_ARN
    assert permission["action"] == "lambda:InvokeFunction" and permission["function"] == "ARTI4207-Lambda-Criterio"


def test_failed_invocations_go_to_an_encrypted_dead_letter_queue_after_the_retries(dev):
    dlq = dev.one("aws:sqs/queue:Queue", "criteria-dlq").inputs
    assert dlq["name"] == "ARTI4207-Lambda-Criterio-dlq" and dlq["sqsManagedSseEnabled"] is True
    invoke = dev.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs
    assert invoke["maximumRetryAttempts"] == 2
    assert invoke["destinationConfig"] == {"onFailure": {"destination": DLQ_ARN}}
    alarm = dev.one("aws:cloudwatch/metricAlarm:MetricAlarm", "criteria-dlq").inputs
    assert alarm["dimensions"] == {"QueueName": "ARTI4207-Lambda-Criterio-dlq"} and alarm["threshold"] == 0
    assert alarm["alarmActions"] == alarm["okActions"] == [ALERT_TOPIC_ARN]


def test_notifications_sns_cannot_deliver_go_to_the_topics_dead_letter_queue(dev):
    # SNS drops a notification it could not hand to Lambda after its retries, unless the
    # subscription has a redrive policy; the DLQ must let exactly that topic send.
    dlq = dev.one("aws:sqs/queue:Queue", "topic-dlq").inputs
    assert dlq["name"] == "ARTI4207-topico-dlq" and dlq["sqsManagedSseEnabled"] is True
    assert dlq["messageRetentionSeconds"] == 14 * 24 * 3600
    grant, deny = json.loads(dev.one("aws:sqs/queuePolicy:QueuePolicy", "topic-dlq").inputs["policy"])["Statement"]
    assert grant == {"Sid": "TopicRedrive", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                     "Action": "sqs:SendMessage", "Resource": TOPIC_DLQ_ARN,
                     "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC_ARN}}}
    assert deny["Effect"] == "Deny"
    alarm = dev.one("aws:cloudwatch/metricAlarm:MetricAlarm", "topic-dlq").inputs
    assert alarm["dimensions"] == {"QueueName": "ARTI4207-topico-dlq"} and alarm["alarmActions"] == [ALERT_TOPIC_ARN]


def test_criteria_role_may_write_only_quality_reports(dev):
    policy = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    granted = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]}
    assert granted == {
        "ListBucket": (["s3:ListBucket"], [f"arn:aws:s3:::{BUCKET}"]),
        "ReadDatasets": (["s3:GetObject", "s3:GetObjectVersion"], [f"arn:aws:s3:::{BUCKET}/*/*.csv"]),
        "StoreReports": (["s3:PutObject"], [f"arn:aws:s3:::{BUCKET}/*/criteria.json"]),
        "ScoreItems": (["dynamodb:UpdateItem"], [TABLE_ARN]),
        "KeepFailedEvents": (["sqs:SendMessage"], [DLQ_ARN]),
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], [
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/ARTI4207-Lambda-Criterio:log-stream:*"]),
    }


def test_criteria_role_is_named_after_the_function(dev):
    role = dev.one("aws:iam/role:Role").inputs
    assert role["namePrefix"] == "ARTI4207-Lambda-Criterio-" and "name" not in role


def test_a_long_criteria_function_name_still_gives_a_role_prefix_iam_accepts():
    import dataclasses
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), criteria_function_name="C" * 64)
    prefix = notification(config).one("aws:iam/role:Role").inputs["namePrefix"]
    assert prefix == "C" * 37 + "-" and len(prefix) == 38  # IAM: 64, less the 26-character unique suffix
