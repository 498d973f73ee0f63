"""SQS queues as every queue of this stack is: SQS-managed encryption, a TLS-only policy; and
dead-letter queues, kept 14 days, with an alarm on their first message."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import PipelineConfig


def queue(name: str, *, queue_name: str, retention_seconds: int, parent: pulumi.Resource,
          **settings: Any) -> aws.sqs.Queue:
    created = aws.sqs.Queue(
        name,
        name=queue_name,
        message_retention_seconds=retention_seconds,
        sqs_managed_sse_enabled=True,  # SQS.1 (the PoC disabled encryption)
        opts=pulumi.ResourceOptions(parent=parent),
        **settings,
    )
    aws.sqs.QueuePolicy(
        f"{name}-policy", queue_url=created.url,
        policy=iam.document(iam.deny_insecure_transport("DenyInsecureTransport", "sqs", [created.arn])),
        opts=pulumi.ResourceOptions(parent=parent))
    return created


def dead_letter_queue(name: str, *, queue_name: str, config: PipelineConfig,
                      parent: pulumi.Resource) -> tuple[aws.sqs.Queue, aws.cloudwatch.MetricAlarm]:
    created = queue(name, queue_name=queue_name, retention_seconds=config.dead_letter_retention_seconds,
                    parent=parent)
    return created, dead_letter_alarm(f"{name}-alarm", created, parent)


def dead_letter_alarm(name: str, queue: aws.sqs.Queue, parent: pulumi.Resource) -> aws.cloudwatch.MetricAlarm:
    """Alarm as soon as one message is visible in a dead-letter queue: each one is lost work."""
    return aws.cloudwatch.MetricAlarm(
        name,
        alarm_description=queue.name.apply(lambda q: f"Messages are waiting in the dead-letter queue {q}"),
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": queue.name},
        statistic="Maximum",
        period=300,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        opts=pulumi.ResourceOptions(parent=parent),
    )
