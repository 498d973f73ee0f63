"""CloudWatch log groups (every one with a retention period) and dead-letter-queue alarms."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def log_group(name: str, log_group_name: pulumi.Input[str], retention_days: int,
              parent: pulumi.Resource) -> aws.cloudwatch.LogGroup:
    # Created before the function/job writes to it, so AWS never auto-creates it without retention.
    return aws.cloudwatch.LogGroup(
        name,
        name=log_group_name,
        retention_in_days=retention_days,
        opts=pulumi.ResourceOptions(parent=parent),
    )


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
