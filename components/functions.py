"""The pipeline's Python Lambdas, built one way: handlers/ + contract/ package, Powertools layer,
JSON logs into a log group created first (with retention), one role with one inline policy."""

from __future__ import annotations

from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import artifacts, iam, logs
from components.config import PipelineConfig


def log_group_name(function_name: str) -> str:
    # The name Lambda would use itself, so nothing else ever creates one without retention.
    return f"/aws/lambda/{function_name}"


def python_function(
    name: str,
    *,
    config: PipelineConfig,
    function_name: str,
    role_name_prefix: str,
    handler: str,
    memory_mb: int,
    timeout_seconds: int,
    environment: Mapping[str, pulumi.Input[str]],
    statements: Sequence[dict],
    description: str,
    parent: pulumi.Resource,
) -> tuple[aws.lambda_.Function, aws.iam.Role, aws.cloudwatch.LogGroup, aws.iam.RolePolicy]:
    """A function, its role (given `statements` plus writing its own logs) and its log group."""
    log_group = logs.log_group(f"{name}-logs", log_group_name(function_name), config.log_retention_days, parent)
    role, policy = iam.role(
        f"{name}-role", "lambda.amazonaws.com",
        iam.document(*statements, iam.allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                                            [iam.log_stream_arn(log_group.arn)])),
        parent, description, name_prefix=role_name_prefix,
        source_account=aws.get_caller_identity_output().account_id)
    if config.powertools_layer_version:
        layer = aws.get_region_output().region.apply(lambda region: artifacts.powertools_layer_arn(
            region, config.lambda_runtime, config.lambda_architecture, config.powertools_layer_version))
    else:
        # insecure_value: the provider marks `value` secret whatever the parameter holds, which
        # would hide this public layer ARN in every preview and diff.
        layer = aws.ssm.get_parameter_output(name=artifacts.powertools_parameter(
            config.lambda_runtime, config.lambda_architecture, config.powertools_version)).insecure_value
    function = aws.lambda_.Function(
        name,
        name=function_name,
        description=description,
        runtime=config.lambda_runtime,
        architectures=[config.lambda_architecture],
        handler=handler,
        code=artifacts.lambda_archive(),
        role=role.arn,
        memory_size=memory_mb,
        timeout=timeout_seconds,
        layers=[layer],
        environment={"variables": dict(environment)},
        logging_config={"log_format": "JSON", "log_group": log_group.name},
        # The role must be able to write logs (and read the queue) before the first invocation.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[log_group, policy]),
    )
    return function, role, log_group, policy
