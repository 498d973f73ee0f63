"""CloudWatch log groups: every one created by the program, with a retention period."""

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
