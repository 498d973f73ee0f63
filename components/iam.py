"""IAM building blocks: policy documents as plain data, one role per principal with one inline policy.

Documents are built from plain dicts and `pulumi.Output.json_dumps`, so every statement names the
exact ARNs it needs and tests can parse and lint them (parliament) without AWS.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.config import ROLE_NAME_PREFIX_MAX

# The one action that takes no resource: the job's execution role needs it to pull the image.
RESOURCELESS_ACTIONS = ("ecr:GetAuthorizationToken",)


def allow(sid: str, actions: Sequence[str], resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """An Allow statement; `actions` and `resources` are kept as given (sorted for stable diffs)."""
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}


def deny_insecure_transport(sid: str, action: str, resources: Sequence[pulumi.Input[str]]) -> dict[str, Any]:
    """The resource-policy statement refusing plain-HTTP requests (S3.5 and its SQS and SNS equivalents).

    `action` as each service documents the pattern: every action (`s3:*`, `sqs:*`) for buckets and
    queues, `sns:Publish` for topics (a topic policy names SNS's own topic actions). A Deny cannot
    widen access.
    """
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def document(*statements: Mapping[str, Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust_policy(service: str, source_account: pulumi.Input[str] | None = None,
                 source_arn: pulumi.Input[str] | None = None) -> pulumi.Output[str]:
    """Who may assume the role; `source_account` guards against the confused-deputy problem, and
    `source_arn` (where the service documents one, and both conditions must hold) narrows it to
    one resource of that account."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, Any] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        condition["ArnEquals"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return document(statement)


def log_stream_arn(log_group_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Log streams of one group: what logs:CreateLogStream / logs:PutLogEvents act on."""
    return pulumi.Output.concat(log_group_arn, ":log-stream:*")


def objects_arn(bucket_arn: pulumi.Input[str], pattern: str = "*") -> pulumi.Output[str]:
    return pulumi.Output.concat(bucket_arn, "/", pattern)


def role(name: str, service: str, policy: pulumi.Input[str], parent: pulumi.Resource,
         description: str, *, name_prefix: str,
         source_account: pulumi.Input[str] | None = None,
         source_arn: pulumi.Input[str] | None = None) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    """One role for one principal with its single inline policy (no managed policies).

    Named by `name_prefix` plus the provider's unique suffix: readable in the console, and a
    replacement never collides with the role still in use.
    """
    if len(name_prefix) > ROLE_NAME_PREFIX_MAX:
        raise ValueError(f"IAM role name_prefix {name_prefix!r} is longer than {ROLE_NAME_PREFIX_MAX}")
    opts = pulumi.ResourceOptions(parent=parent)
    created = aws.iam.Role(
        name,
        name_prefix=name_prefix,
        description=description,
        assume_role_policy=trust_policy(service, source_account, source_arn),
        opts=opts,
    )
    inline = aws.iam.RolePolicy(f"{name}-policy", role=created.id, policy=policy, opts=opts)
    return created, inline
