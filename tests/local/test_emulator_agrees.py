"""The local emulator's resources and the deployed stack's come from one PipelineConfig: prove it.

The Pulumi program runs under mocks with Pulumi.dev.yaml's config; the emulator is created from
the same file; each setting the pipeline's behaviour depends on is read from both and compared.
"""

from __future__ import annotations

import json
import runpy

import pytest

from components.config import ROOT, PipelineConfig
from tests.pulumi_mocks import Deployment, deploy, stack_config


@pytest.fixture(scope="module")
def stack() -> Deployment:
    return deploy(lambda: runpy.run_path(str(ROOT / "__main__.py")), stack_config())


@pytest.fixture()
def dev_aws(local_aws):
    assert local_aws.config == PipelineConfig.from_stack_file("dev")
    return local_aws


def _queue(stack: Deployment, name: str):
    return next(q for q in stack.of_type("aws:sqs/queue:Queue") if q.inputs.get("name") == name)


def test_queues_agree(stack, dev_aws):
    sqs = dev_aws.client("sqs")
    r = dev_aws.resources
    local = sqs.get_queue_attributes(QueueUrl=r.queue_url, AttributeNames=["All"])["Attributes"]
    deployed = _queue(stack, dev_aws.config.queue_name)
    assert int(local["VisibilityTimeout"]) == deployed.inputs["visibilityTimeoutSeconds"]
    assert int(local["MessageRetentionPeriod"]) == deployed.inputs["messageRetentionSeconds"]
    assert local["SqsManagedSseEnabled"] == "true" and deployed.inputs["sqsManagedSseEnabled"] is True
    local_redrive = json.loads(local["RedrivePolicy"])
    deployed_redrive = deployed.json("redrivePolicy")
    assert local_redrive["maxReceiveCount"] == deployed_redrive["maxReceiveCount"]
    assert local_redrive["deadLetterTargetArn"].endswith(":" + dev_aws.config.dead_letter_queue_name)
    assert deployed_redrive["deadLetterTargetArn"].endswith(":" + dev_aws.config.dead_letter_queue_name)
    for name, url in ((dev_aws.config.dead_letter_queue_name, r.dead_letter_queue_url),
                      (dev_aws.config.criteria_dead_letter_queue_name, r.criteria_dead_letter_queue_url)):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert int(attributes["MessageRetentionPeriod"]) == _queue(stack, name).inputs["messageRetentionSeconds"]


def test_table_agrees(stack, dev_aws):
    local = dev_aws.client("dynamodb").describe_table(TableName=dev_aws.resources.table)["Table"]
    deployed = stack.one("aws:dynamodb/table:Table")
    assert local["TableName"] == deployed.inputs["name"]
    keys = {k["KeyType"]: k["AttributeName"] for k in local["KeySchema"]}
    assert keys == {"HASH": deployed.inputs["hashKey"], "RANGE": deployed.inputs["rangeKey"]}
    assert local["BillingModeSummary"]["BillingMode"] == deployed.inputs["billingMode"]
    assert local["DeletionProtectionEnabled"] == deployed.inputs["deletionProtectionEnabled"]


def test_topic_bucket_and_delivery_settings_agree(stack, dev_aws):
    config = dev_aws.config
    topic = stack.one("aws:sns/topic:Topic", "processing")
    local_topic = dev_aws.client("sns").get_topic_attributes(TopicArn=dev_aws.resources.topic_arn)["Attributes"]
    assert local_topic["KmsMasterKeyId"] == topic.inputs["kmsMasterKeyId"]
    assert dev_aws.resources.topic_arn.endswith(":" + topic.inputs["name"])

    bucket = stack.one("aws:s3/bucket:Bucket")
    assert dev_aws.resources.bucket == bucket.outputs["bucket"]
    versioning = dev_aws.client("s3").get_bucket_versioning(Bucket=dev_aws.resources.bucket)
    assert versioning["Status"] == "Enabled"

    # What the local delivery uses is what the stack configures.
    mapping = stack.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert mapping.inputs["batchSize"] == config.batch_size
    invoke = stack.one("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
    assert invoke.inputs["maximumRetryAttempts"] == config.criteria_retry_attempts


def test_the_environments_the_demo_gives_the_code_are_the_deployed_ones(stack, dev_aws):
    r = dev_aws.resources
    config = dev_aws.config
    job = stack.one("aws:batch/jobDefinition:JobDefinition").json("containerProperties")
    deployed_job_env = {e["name"]: e["value"] for e in job["environment"]}
    local_job_env = config.job_environment(bucket=r.bucket, queue_url=r.queue_url)
    assert set(deployed_job_env) == set(local_job_env)
    assert {k: v for k, v in deployed_job_env.items() if k != "QUEUE_URL"} == \
        {k: v for k, v in local_job_env.items() if k != "QUEUE_URL"}

    functions = {f.inputs["name"]: f.inputs["environment"]["variables"]
                 for f in stack.of_type("aws:lambda/function:Function")}
    local_metadata = config.metadata_environment(bucket=r.bucket, table=r.table, topic_arn=r.topic_arn)
    local_criteria = config.criteria_environment(bucket=r.bucket, table=r.table)
    for deployed, local in ((functions[config.metadata_function_name], local_metadata),
                            (functions[config.criteria_function_name], local_criteria)):
        assert set(deployed) == set(local)
        assert {k: v for k, v in deployed.items() if k != "TOPIC_ARN"} == \
            {k: v for k, v in local.items() if k != "TOPIC_ARN"}
