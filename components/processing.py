"""Processing: the metadata table, the topic, and the metadata Lambda fed by the harvest queue.

PoC steps 7-9: DynamoDB table (on-demand, PITR, key HASH + ID), encrypted SNS topic (TLS only), and the
metadata Lambda with an SQS event source mapping (batch size from config, partial batch failures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws

from components import iam
from components.config import PipelineConfig
from components.functions import python_function
from contract import DATASET_KEY_PATTERN, Table

METADATA_HANDLER = "handlers.metadata.handler"


@dataclass
class ProcessingArgs:
    config: PipelineConfig
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    queue_arn: pulumi.Input[str]


class Processing(pulumi.ComponentResource):
    """DynamoDB table, SNS topic and the metadata Lambda consuming the harvest queue."""

    def __init__(self, name: str, args: ProcessingArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("arti4207:processing:Processing", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)

        # One item per (content hash, dataset): identical bytes from two datasets keep two items,
        # and a re-harvest with new content adds an item instead of overwriting (history).
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=config.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=Table.PARTITION_KEY,
            range_key=Table.SORT_KEY,
            attributes=[{"name": Table.PARTITION_KEY, "type": "S"}, {"name": Table.SORT_KEY, "type": "S"}],
            point_in_time_recovery={"enabled": True},  # DynamoDB.2 (Security Hub); the PoC's console left it off
            deletion_protection_enabled=config.deletion_protection,
            # DynamoDB's protection fails a replacement (a new tableName) only at DeleteTable, in the
            # middle of `pulumi up`; Pulumi's refuses it, and `pulumi destroy`, before any step.
            opts=pulumi.ResourceOptions(parent=self, protect=config.deletion_protection),
        )
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=config.topic_name,
            kms_master_key_id="alias/aws/sns",  # SNS.1; the AWS-managed key needs no key policy of ours
            opts=child,
        )
        # Publishing over plain HTTP refused, as the bucket and the queues refuse it. Only a Deny: this
        # account's roles publish and subscribe through their own IAM policies.
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-topic-policy",
            arn=self.topic.arn,
            policy=iam.document(iam.deny_insecure_transport("DenyInsecureTransport", "sns:Publish", [self.topic.arn])),
            opts=child,
        )

        self.function, self.role, self.log_group, policy = python_function(
            f"{name}-metadata",
            config=config,
            function_name=config.metadata_function_name,
            role_name_prefix=config.role_name_prefixes["metadata"],
            handler=METADATA_HANDLER,
            memory_mb=config.metadata_memory_mb,
            timeout_seconds=config.metadata_timeout_seconds,
            environment=config.metadata_environment(
                bucket=args.bucket_name, table=self.table.name, topic_arn=self.topic.arn),
            statements=[
                # ListBucket makes a missing object answer 404 (NoSuchKey) instead of 403, so a
                # 403 can only be a permission problem, which fails the record (and then alarms).
                iam.allow("ListBucket", ["s3:ListBucket"], [args.bucket_arn]),
                iam.allow("ReadDatasets", ["s3:GetObject", "s3:GetObjectVersion"],
                          [iam.objects_arn(args.bucket_arn, DATASET_KEY_PATTERN)]),
                iam.allow("CatalogueDatasets", ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                          [self.table.arn]),
                iam.allow("AnnounceProcessed", ["sns:Publish"], [self.topic.arn]),
                # The event source mapping polls with this role; it needs no more (a failed
                # record becomes visible again when its visibility timeout ends).
                iam.allow("ConsumeHarvestQueue", ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
                          [args.queue_arn]),
            ],
            description="Hashes each harvested dataset, catalogues it in DynamoDB and announces it on SNS",
            parent=self,
        )
        self.event_source_mapping = aws.lambda_.EventSourceMapping(
            f"{name}-metadata-trigger",
            event_source_arn=args.queue_arn,
            function_name=self.function.arn,
            batch_size=config.batch_size,
            function_response_types=["ReportBatchItemFailures"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

        self.table_name = self.table.name
        self.table_arn = self.table.arn
        self.topic_arn = self.topic.arn
        self.function_name = self.function.name
        self.register_outputs({
            "tableName": self.table_name,
            "topicArn": self.topic_arn,
            "metadataFunctionName": self.function_name,
        })
