"""Notification: the criteria Lambda subscribed to the topic, with two dead-letter queues.

PoC step 10. SNS invokes Lambda asynchronously: after the configured retries a failed event goes to
an SQS dead-letter queue (on-failure destination) instead of being dropped after six hours. A
notification SNS itself cannot hand to Lambda (the invoke refused: throttled, permission or
function missing) goes, after SNS's own retries, to the topic's DLQ (the subscription's redrive
policy) instead of being dropped. Both DLQs alarm on their first message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components import iam, queues
from components.config import PipelineConfig
from components.functions import python_function
from contract import CRITERIA_KEY_PATTERN, DATASET_KEY_PATTERN

CRITERIA_HANDLER = "handlers.criteria.handler"


@dataclass
class NotificationArgs:
    config: PipelineConfig
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    table_name: pulumi.Input[str]
    table_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    alert_topic_arn: pulumi.Input[str]


class Notification(pulumi.ComponentResource):
    """The criteria Lambda, its SNS subscription and permission, and the DLQs of both."""

    def __init__(self, name: str, args: NotificationArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("arti4207:notification:Notification", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        self.dead_letter_queue, self.dead_letter_alarm = queues.dead_letter_queue(
            f"{name}-criteria-dlq", queue_name=config.criteria_dead_letter_queue_name, config=config,
            alert_topic_arn=args.alert_topic_arn, parent=self)
        # SNS writes to this one itself: the queue's policy lets exactly the topic send.
        self.topic_dead_letter_queue, self.topic_dead_letter_alarm = queues.dead_letter_queue(
            f"{name}-topic-dlq", queue_name=config.topic_dead_letter_queue_name, config=config,
            alert_topic_arn=args.alert_topic_arn, parent=self,
            allow=[topic_may_send(args.topic_arn)])

        self.function, self.role, self.log_group, policy = python_function(
            f"{name}-criteria",
            config=config,
            function_name=config.criteria_function_name,
            role_name_prefix=config.role_name_prefixes["criteria"],
            handler=CRITERIA_HANDLER,
            memory_mb=config.criteria_memory_mb,
            timeout_seconds=config.criteria_timeout_seconds,
            environment=config.criteria_environment(bucket=args.bucket_name, table=args.table_name),
            statements=[
                # ListBucket makes a missing object answer NoSuchKey (scored as unavailable)
                # instead of AccessDenied (which would only be retried).
                iam.allow("ListBucket", ["s3:ListBucket"], [args.bucket_arn]),
                iam.allow("ReadDatasets", ["s3:GetObject", "s3:GetObjectVersion"],
                          [iam.objects_arn(args.bucket_arn, DATASET_KEY_PATTERN)]),
                iam.allow("StoreReports", ["s3:PutObject"],
                          [iam.objects_arn(args.bucket_arn, CRITERIA_KEY_PATTERN)]),
                iam.allow("ScoreItems", ["dynamodb:UpdateItem"], [args.table_arn]),
                iam.allow("KeepFailedEvents", ["sqs:SendMessage"], [self.dead_letter_queue.arn]),
            ],
            description="Scores each processed dataset against the MinTIC open-data quality criteria",
            parent=self,
        )
        self.invoke_config = aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-criteria-async",
            function_name=self.function.name,
            maximum_retry_attempts=config.criteria_retry_attempts,
            destination_config={"on_failure": {"destination": self.dead_letter_queue.arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.permission = aws.lambda_.Permission(
            f"{name}-criteria-from-topic",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="sns.amazonaws.com",
            source_arn=args.topic_arn,  # Lambda.1: only this topic may invoke
            opts=child,
        )
        self.subscription = aws.sns.TopicSubscription(
            f"{name}-criteria-subscription",
            topic=args.topic_arn,
            protocol="lambda",
            endpoint=self.function.arn,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.topic_dead_letter_queue.arn}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.permission]),
        )

        self.function_name = self.function.name
        self.dead_letter_queue_url = self.dead_letter_queue.url
        self.topic_dead_letter_queue_url = self.topic_dead_letter_queue.url
        self.register_outputs({
            "criteriaFunctionName": self.function_name,
            "criteriaDeadLetterQueueUrl": self.dead_letter_queue_url,
            "topicDeadLetterQueueUrl": self.topic_dead_letter_queue_url,
        })


def topic_may_send(topic_arn: pulumi.Input[str]) -> dict:
    """The DLQ policy statement SNS needs to redrive the topic's undelivered notifications."""
    return {
        "Sid": "TopicRedrive",
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    }
