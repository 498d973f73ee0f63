"""Processing component under Pulumi mocks: table, topic and the metadata Lambda (PoC steps 7-9)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from components.config import PipelineConfig
from components.processing import Processing, ProcessingArgs
from contract import LambdaEnv, Services, Table
from tests.pulumi_mocks import ACCOUNT, MOCK_POWERTOOLS_LAYER, REGION, deploy

BUCKET = "arti4207-poc-2023"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ARTI4207-SQS"


def processing(config: PipelineConfig):
    return deploy(lambda: Processing("processing", ProcessingArgs(
        config=config, bucket_name=BUCKET, bucket_arn=f"arn:aws:s3:::{BUCKET}", queue_arn=QUEUE_ARN)))


@pytest.fixture(scope="module")
def dev():
    return processing(PipelineConfig.from_stack_file("dev"))


def test_every_child_has_the_processing_component_as_parent(dev):
    children = [r for r in dev.resources if r.type != "arti4207:processing:Processing"]
    assert children and {r.parent_type for r in children} == {"arti4207:processing:Processing"}


def test_table_is_on_demand_with_pitr_and_a_hash_plus_id_key(dev):
    table = dev.one("aws:dynamodb/table:Table").inputs
    assert table["name"] == "ARTI4207-Dynamo"
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert (table["hashKey"], table["rangeKey"]) == (Table.PARTITION_KEY, Table.SORT_KEY) == ("HASH", "ID")
    assert table["attributes"] == [{"name": "HASH", "type": "S"}, {"name": "ID", "type": "S"}]
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["deletionProtectionEnabled"] is False


def test_deletion_protection_follows_the_config(dev):
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), deletion_protection=True)
    table = processing(config).one("aws:dynamodb/table:Table")
    assert table.inputs["deletionProtectionEnabled"] is True
    # DynamoDB's own protection stops only the DeleteTable call, halfway through an update that
    # replaces the table (a new tableName); Pulumi's refuses the replacement in the preview.
    assert table.options.protect is True
    assert dev.one("aws:dynamodb/table:Table").options.protect is False


def test_topic_is_standard_and_encrypted(dev):
    topic = dev.one("aws:sns/topic:Topic").inputs
    assert topic == {"name": "ARTI4207-topico", "kmsMasterKeyId": "alias/aws/sns"}


def test_metadata_function_settings_come_from_config(dev):
    fn = dev.one("aws:lambda/function:Function").inputs
    assert fn["name"] == "ARTI4207-Lambda"
    assert fn["runtime"] == "python3.11" and fn["architectures"] == ["x86_64"]
    assert fn["handler"] == "handlers.metadata.handler"
    assert (fn["memorySize"], fn["timeout"]) == (256, 120)
    assert fn["layers"] == [f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:"
                            f"{MOCK_POWERTOOLS_LAYER}"]  # the value of the SSM parameter below
    [lookup] = [c for c in dev.mocks.calls if c.token == "aws:ssm/getParameter:getParameter"]
    assert lookup.args["name"] == "/aws/service/powertools/python/x86_64/python3.11/3.37.0"


def test_a_pinned_layer_number_is_used_as_given_without_a_lookup():
    import dataclasses

    pinned = processing(dataclasses.replace(PipelineConfig.from_stack_file("dev"), powertools_layer_version=42))
    assert pinned.one("aws:lambda/function:Function").inputs["layers"] == [
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:42"]
    assert not [c for c in pinned.mocks.calls if c.token == "aws:ssm/getParameter:getParameter"]


def test_metadata_environment_names_table_topic_bucket_and_service(dev):
    variables = dev.one("aws:lambda/function:Function").inputs["environment"]["variables"]
    assert variables == {
        LambdaEnv.TABLE_NAME: "ARTI4207-Dynamo",
        LambdaEnv.TOPIC_ARN: f"arn:aws:sns:{REGION}:{ACCOUNT}:ARTI4207-topico",
        LambdaEnv.BUCKET: BUCKET,
        LambdaEnv.POWERTOOLS_SERVICE_NAME: Services.METADATA,
    }


def test_metadata_logs_go_to_its_own_group_with_retention(dev):
    group = dev.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group == {"name": "/aws/lambda/ARTI4207-Lambda", "retentionInDays": 30}
    assert dev.one("aws:lambda/function:Function").inputs["loggingConfig"] == {
        "logFormat": "JSON", "logGroup": "/aws/lambda/ARTI4207-Lambda"}


def test_queue_feeds_the_function_one_message_at_a_time_with_partial_failures(dev):
    mapping = dev.one("aws:lambda/eventSourceMapping:EventSourceMapping").inputs
    assert mapping["eventSourceArn"] == QUEUE_ARN
    assert mapping["functionName"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ARTI4207-Lambda"
    assert mapping["batchSize"] == 1
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]


def test_metadata_role_names_exactly_the_resources_it_uses(dev):
    policy = json.loads(dev.one("aws:iam/rolePolicy:RolePolicy").inputs["policy"])
    granted = {s["Sid"]: (s["Action"], s["Resource"]) for s in policy["Statement"]}
    assert granted == {
        "ListBucket": (["s3:ListBucket"], [f"arn:aws:s3:::{BUCKET}"]),
        "ReadDatasets": (["s3:GetObject", "s3:GetObjectVersion"], [f"arn:aws:s3:::{BUCKET}/*/*.csv"]),
        "CatalogueDatasets": (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                              [f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/ARTI4207-Dynamo"]),
        "AnnounceProcessed": (["sns:Publish"], [f"arn:aws:sns:{REGION}:{ACCOUNT}:ARTI4207-topico"]),
        # What the event source mapping calls with this role (AWSLambdaSQSQueueExecutionRole's actions).
        "ConsumeHarvestQueue": (["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], [QUEUE_ARN]),
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"],
                         [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/ARTI4207-Lambda:log-stream:*"]),
    }
    trust = json.loads(dev.one("aws:iam/role:Role").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_metadata_role_is_named_after_the_pocs_role(dev):
    role = dev.one("aws:iam/role:Role").inputs
    assert role["namePrefix"] == "ARTI4207-Lambda-Metadata-" and "name" not in role  # PoC step 1


def test_a_configured_metadata_role_name_is_the_prefix():
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), metadata_role_name="prod-metadata")
    assert processing(config).one("aws:iam/role:Role").inputs["namePrefix"] == "prod-metadata-"
