"""SQS queues as every queue of this stack is: SQS-managed encryption, a TLS-only policy; and
dead-letter queues, kept `deadLetterRetentionSeconds` (14 days), with an alarm on their first
message. Every alarm notifies the stack's alerts topic (components.alerts), when it fires and
when it clears."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import alerts, iam
from components.config import PipelineConfig


def queue(name: str, *, queue_name: str, retention_seconds: int, parent: pulumi.Resource,
          allow: Sequence[Mapping[str, Any]] = (), **settings: Any) -> aws.sqs.Queue:
    """`allow`: statements granting another service access to this queue (their Resource is set
    to the queue), on top of TLS-only."""
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
        policy=iam.document(*({**statement, "Resource": created.arn} for statement in allow),
                            iam.deny_insecure_transport("DenyInsecureTransport", "sqs:*", [created.arn])),
        opts=pulumi.ResourceOptions(parent=parent))
    return created


def dead_letter_queue(name: str, *, queue_name: str, config: PipelineConfig, alert_topic_arn: pulumi.Input[str],
                      parent: pulumi.Resource, allow: Sequence[Mapping[str, Any]] = (),
                      ) -> tuple[aws.sqs.Queue, aws.cloudwatch.MetricAlarm]:
    created = queue(name, queue_name=queue_name, retention_seconds=config.dead_letter_retention_seconds,
                    parent=parent, allow=allow)
    return created, dead_letter_alarm(f"{name}-alarm", created, alert_topic_arn, parent)


def dead_letter_alarm(name: str, queue: aws.sqs.Queue, alert_topic_arn: pulumi.Input[str],
                      parent: pulumi.Resource) -> aws.cloudwatch.MetricAlarm:
    """Alarm as soon as one message is visible in a dead-letter queue: each one is lost work."""
    return alerts.metric_alarm(
        name, alert_topic_arn, parent,
        alarm_description=queue.name.apply(lambda q: f"Messages are waiting in the dead-letter queue {q}"),
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": queue.name},
        statistic="Maximum",
        threshold=0,
    )


def age_alarm(name: str, queue: aws.sqs.Queue, config: PipelineConfig, alert_topic_arn: pulumi.Input[str],
              parent: pulumi.Resource) -> aws.cloudwatch.MetricAlarm:
    """Alarm when the queue's oldest message is older than its retries can explain: nothing is
    consuming it (a disabled or broken trigger), and SQS deletes it at the end of its retention,
    without a dead letter."""
    return alerts.metric_alarm(
        name, alert_topic_arn, parent,
        alarm_description=queue.name.apply(
            lambda q: f"A message in {q} is older than {config.queue_age_alarm_seconds} s: is its Lambda trigger "
                      f"working? SQS deletes it after {config.message_retention_seconds} s"),
        namespace="AWS/SQS",
        metric_name="ApproximateAgeOfOldestMessage",
        dimensions={"QueueName": queue.name},
        statistic="Maximum",
        threshold=config.queue_age_alarm_seconds,
    )
