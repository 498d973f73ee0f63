"""Alerts: the topic every alarm and every failed or blocked harvest job notifies, and who reads it.

Not in the PoC, which had no alarms. Subscribed by email (`alertEmails`): each address gets a
confirmation email from SNS first. Other subscribers (chat, paging) can subscribe to the exported
`alertTopicArn`.

The topic is not encrypted: CloudWatch alarms and EventBridge cannot publish to a topic under the
AWS-managed `alias/aws/sns` key (its key policy cannot grant them), a customer-managed key costs
a key per stack, and an alert carries only resource names and states, never data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import PipelineConfig

# The services that publish alerts here: alarms (the DLQs, the queue's age, the schedule) and
# EventBridge (failed and blocked Batch jobs).
PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


@dataclass
class AlertsArgs:
    config: PipelineConfig


class Alerts(pulumi.ComponentResource):
    """The alerts topic, its policy (this account's alarms and rules may publish) and the email
    subscriptions."""

    def __init__(self, name: str, args: AlertsArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("arti4207:alerts:Alerts", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        self.topic = aws.sns.Topic(f"{name}-topic", name=config.alert_topic_name, opts=child)
        account = aws.get_caller_identity_output().account_id
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=iam.document(
                {
                    "Sid": "AlarmsAndRulesOfThisAccount",
                    "Effect": "Allow",
                    "Principal": {"Service": list(PUBLISHERS)},
                    "Action": "sns:Publish",
                    "Resource": self.topic.arn,
                    # Only this account's alarms and rules (the confused-deputy guard).
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                },
                iam.deny_insecure_transport("DenyInsecureTransport", "sns:Publish", [self.topic.arn]),
            ),
            opts=child,
        )
        # Named after the address, not its place in the list: removing one address leaves the
        # others' subscriptions (and their confirmations) alone.
        self.subscriptions = [
            aws.sns.TopicSubscription(f"{name}-email-{hashlib.sha256(address.encode()).hexdigest()[:12]}",
                                      topic=self.topic.arn, protocol="email", endpoint=address, opts=child)
            for address in config.alert_emails
        ]

        self.topic_arn = self.topic.arn
        self.register_outputs({"alertTopicArn": self.topic_arn})


def metric_alarm(name: str, alert_topic_arn: pulumi.Input[str], parent: pulumi.Resource,
                 **settings: Any) -> aws.cloudwatch.MetricAlarm:
    """A metric alarm of this stack: above the threshold in one 5-minute period; no data is fine
    (SQS stops sending an idle queue's metrics, Scheduler a quiet schedule's). The alerts topic
    hears when it fires and when it clears."""
    return aws.cloudwatch.MetricAlarm(
        name,
        period=300,
        evaluation_periods=1,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[alert_topic_arn],
        ok_actions=[alert_topic_arn],
        opts=pulumi.ResourceOptions(parent=parent),
        **settings,
    )
