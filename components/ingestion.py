"""Ingestion: the harvester image, the bucket, the queue and the AWS Batch job that fills them.

PoC steps 2-6: ECR repository, SQS queue, S3 bucket, Batch compute environment / job queue / job
definition, plus what the PoC left out: a dead-letter queue, encryption, TLS-only access, a
non-root container, the app token as a Batch secret, an optional schedule, and alerts (the DLQ's
first message, a message the queue's consumer left too long, a failed job, a job blocked in the
queue, a dropped schedule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import alerts, artifacts, iam, logs, queues
from components.config import JOB_EGRESS_PORT, PROJECT, PipelineConfig
from contract import DATASET_KEY_PATTERN, JobEnv, JobExit, Services

# The job definition's command. The PoC ran /workspace/main.py; the image now holds container/ and
# contract/ (the names the job shares with the Lambdas) side by side under /workspace.
HARVESTER_COMMAND = ["python3", "/workspace/container/main.py"]
# Not root (the PoC ran as root). A numeric uid needs no passwd entry and the code only reads files.
RUN_AS_USER = "10001"
# Batch's retry rules, first match wins: a configuration error (harvester exit code 2) is not
# retried; any other failure is (a Fargate Spot reclaim, a failed dataset: a rerun only does the
# remaining work). An attempt Batch stops at its timeout is never retried, whatever the rules:
# the job stops itself before it (JOB_TIMEOUT) and exits 1 instead.
RETRY_RULES = [
    {"on_exit_code": str(JobExit.BAD_SETTINGS), "action": "EXIT"},
    {"on_reason": "*", "action": "RETRY"},
]
SUBMIT_JOB_TARGET = "arn:aws:scheduler:::aws-sdk:batch:submitJob"
# The alert of a failed job: EventBridge fills in the <placeholders> from the event. Plain text,
# not a JSON string: SNS would mail a quoted string with its quotes.
FAILED_JOB_ALERT = ("The harvest job <name> (<id>) failed: <reason>. If it ran, its summary is at the end of "
                    "its log stream (Batch console, the job, Logging).")
JOB_NAME = f"{PROJECT}-harvest"
BLOCKED_JOB_ALERT = ("The harvest job <name> (<id>) cannot start: <reason>. It waits in RUNNABLE; for want of "
                     "capacity or too large, it is cancelled after {limit} s (runnableTimeLimitSeconds) and fails.")
# The reasons a job can be stuck in RUNNABLE for which Batch can cancel it (jobStateTimeLimitActions;
# the others, a service role or an invalid compute environment, need a person: the blocked alert).
# Cancelled, the job ends FAILED, so the failed-job alert fires and the next job can start.
CANCELLABLE_RUNNABLE_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",  # no Spot (or Fargate) capacity
    "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",  # the job needs more vCPU than maxVcpus
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",  # no resource fits the job's size
)


@dataclass
class IngestionArgs:
    config: PipelineConfig
    alert_topic_arn: pulumi.Input[str]
    # The portal app token as a Pulumi secret; None when not configured.
    app_token: Optional[pulumi.Output[str]] = None


def submit_job_input(job_queue_arn: str, job_definition_arn: str, shards: int) -> str:
    """The SubmitJob request the schedule sends (API member names, as Scheduler expects)."""
    request: dict = {"JobName": JOB_NAME, "JobQueue": job_queue_arn, "JobDefinition": job_definition_arn}
    if shards > 1:
        request["ArrayProperties"] = {"Size": shards}
    return json.dumps(request)


def failed_job_pattern(job_queue_arn: str) -> str:
    """EventBridge pattern of a job of this queue that ends FAILED (an array job's children too)."""
    return json.dumps({"source": ["aws.batch"], "detail-type": ["Batch Job State Change"],
                       "detail": {"status": ["FAILED"], "jobQueue": [job_queue_arn]}})


def blocked_job_pattern(job_queue_arn: str) -> str:
    """EventBridge pattern of a job that Batch finds blocking this queue in RUNNABLE."""
    return json.dumps({"source": ["aws.batch"], "detail-type": ["Batch Job Queue Blocked"],
                       "detail": {"jobQueue": [job_queue_arn]}})


def job_alert(name: str, pattern: pulumi.Output[str], description: str, template: str,
              alert_topic_arn: pulumi.Input[str], opts: pulumi.ResourceOptions) -> aws.cloudwatch.EventRule:
    """A rule sending the alerts topic `template` filled in with the job's name, id and reason."""
    rule = aws.cloudwatch.EventRule(name, description=description, event_pattern=pattern, opts=opts)
    aws.cloudwatch.EventTarget(
        f"{name}-alert",
        rule=rule.name,
        arn=alert_topic_arn,
        input_transformer={
            "input_paths": {"name": "$.detail.jobName", "id": "$.detail.jobId", "reason": "$.detail.statusReason"},
            "input_template": template,
        },
        opts=opts,
    )
    return rule


def submit_job_command(region: str, job_queue_arn: str, job_definition_arn: str, shards: int) -> str:
    """A ready-to-paste command starting one harvest by hand."""
    command = (f"aws batch submit-job --region {region} --job-name {JOB_NAME} "
               f"--job-queue {job_queue_arn} --job-definition {job_definition_arn}")
    if shards > 1:
        command += f" --array-properties size={shards}"
    return command


def container_properties(config: PipelineConfig, *, image: str, execution_role_arn: str, job_role_arn: str,
                         bucket: str, queue_url: str, log_group: str, region: str,
                         token_parameter_arn: Optional[str]) -> str:
    """The job definition's container document (pure, so tests read it as plain data)."""
    # The same environment the local runner gives the job (PipelineConfig.job_environment).
    environment = config.job_environment(bucket=bucket, queue_url=queue_url)
    properties: dict = {
        "image": image,
        "command": HARVESTER_COMMAND,
        "user": RUN_AS_USER,
        # The job streams to S3 and writes nothing to disk (tests/container/test_main.py proves it).
        "readonlyRootFilesystem": True,
        "executionRoleArn": execution_role_arn,
        "jobRoleArn": job_role_arn,
        "resourceRequirements": [
            {"type": "VCPU", "value": config.job_vcpu},
            {"type": "MEMORY", "value": str(config.job_memory_mib)},
        ],
        "environment": [{"name": k, "value": v} for k, v in environment.items()],
        "networkConfiguration": {"assignPublicIp": "ENABLED" if config.assign_public_ip else "DISABLED"},
        "ephemeralStorage": {"sizeInGiB": config.ephemeral_storage_gib},
        "fargatePlatformConfiguration": {"platformVersion": "LATEST"},
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": log_group, "awslogs-region": region,
                        "awslogs-stream-prefix": Services.HARVESTER},
        },
    }
    if token_parameter_arn:
        properties["secrets"] = [{"name": JobEnv.SODA_APP_TOKEN, "valueFrom": token_parameter_arn}]
    return json.dumps(properties)


class Ingestion(pulumi.ComponentResource):
    """ECR + image, S3 bucket, SQS queue with DLQ, and the Batch job harvesting the portal."""

    def __init__(self, name: str, args: IngestionArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("arti4207:ingestion:Ingestion", name, None, opts)
        config = args.config
        child = pulumi.ResourceOptions(parent=self)
        region = aws.get_region_output().region
        account_id = aws.get_caller_identity_output().account_id

        # --- Step 2: ECR repository and the harvester image --------------------------------
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=config.repository_name,
            # MUTABLE on purpose (Security Hub ECR.2 asks for IMMUTABLE): the job runs the image by
            # digest, so a tag never decides what runs; and pulumi-docker rebuilds and re-pushes an
            # existing content-hash tag when a revert brings it back or a checkout's file modes
            # differ, which an IMMUTABLE repository refuses, failing the deploy.
            image_tag_mutability="MUTABLE",
            # `pulumi destroy` of a stack without deletion protection removes the pushed images too
            # (pulumi-docker never deletes them; a non-empty repository cannot be deleted).
            force_delete=not config.deletion_protection,
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=self.repository.name,
            policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": f"keep the last {config.image_retention_count} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                              "countNumber": config.image_retention_count},
                "action": {"type": "expire"},
            }]}),
            opts=child,
        )
        credentials = aws.ecr.get_authorization_token_output(registry_id=self.repository.registry_id)
        self.image = docker.Image(
            f"{name}-image",
            # The tag is the content hash of container/ and contract/: a code change is a new tag,
            # and the job definition follows the digest.
            image_name=pulumi.Output.concat(self.repository.repository_url, ":", artifacts.source_hash()),
            build=docker.DockerBuildArgs(
                context=".",  # the repository root, so the image can hold contract/ beside container/
                dockerfile="container/Dockerfile",
                platform="linux/amd64",
            ),
            registry=docker.RegistryArgs(
                server=self.repository.repository_url,
                username=credentials.user_name,
                password=pulumi.Output.secret(credentials.password),
            ),
            opts=child,
        )

        # --- Step 4: S3 bucket -------------------------------------------------------------
        # Without deletion protection `pulumi destroy` empties the (versioned) bucket first; with
        # it, a bucket holding data is never deleted, and Pulumi refuses outright any update that
        # would replace it (a new bucketName deletes the old bucket first, its policy and public
        # access block before it) or destroy it: docs/infrastructure.md, "Changing a deployed stack".
        # What guards the bucket is protected with it: `pulumi destroy --exclude-protected` keeps
        # the protected resources and what they depend on, and would delete these (they depend on
        # the bucket), leaving the data bucket it keeps without them.
        guarded = pulumi.ResourceOptions(parent=self, protect=config.deletion_protection)
        self.bucket = aws.s3.Bucket(f"{name}-bucket", bucket=config.bucket_name,
                                    force_destroy=not config.deletion_protection, opts=guarded)
        aws.s3.BucketOwnershipControls(
            f"{name}-bucket-ownership", bucket=self.bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"}, opts=guarded)
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-bucket-public-access", bucket=self.bucket.id,
            block_public_acls=True, block_public_policy=True, ignore_public_acls=True,
            restrict_public_buckets=True, opts=guarded)
        versioning = aws.s3.BucketVersioning(
            f"{name}-bucket-versioning", bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=guarded)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket-encryption", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True}],
            opts=guarded)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket-lifecycle", bucket=self.bucket.id,
            rules=[{
                "id": "abort-incomplete-uploads-and-expire-old-versions",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {"days_after_initiation": config.abort_multipart_days},
                "noncurrent_version_expiration": {"noncurrent_days": config.noncurrent_version_days},
            }],
            # Versioning first, as the provider documents for noncurrent-version rules.
            opts=pulumi.ResourceOptions.merge(guarded, pulumi.ResourceOptions(depends_on=[versioning])))
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-bucket-policy", bucket=self.bucket.id,
            policy=iam.document(iam.deny_insecure_transport(
                "DenyInsecureTransport", "s3:*", [self.bucket.arn, iam.objects_arn(self.bucket.arn)])),
            # A bucket policy cannot be attached while the public access block is being set.
            opts=pulumi.ResourceOptions.merge(guarded, pulumi.ResourceOptions(depends_on=[self.public_access_block])))

        # --- Step 3: SQS queue and its dead-letter queue -----------------------------------
        self.dead_letter_queue, self.dead_letter_alarm = queues.dead_letter_queue(
            f"{name}-dlq", queue_name=config.dead_letter_queue_name, config=config,
            alert_topic_arn=args.alert_topic_arn, parent=self)
        self.queue = queues.queue(
            f"{name}-queue",
            queue_name=config.queue_name,
            retention_seconds=config.message_retention_seconds,
            visibility_timeout_seconds=config.queue_visibility_timeout_seconds,
            redrive_policy=pulumi.Output.json_dumps({
                "deadLetterTargetArn": self.dead_letter_queue.arn,
                "maxReceiveCount": config.max_receive_count,
            }),
            parent=self,
        )
        self.queue_age_alarm = queues.age_alarm(f"{name}-queue-age-alarm", self.queue, config,
                                                args.alert_topic_arn, self)

        # --- Step 6: AWS Batch on Fargate ---------------------------------------------------
        if config.subnet_ids:
            subnet_ids: pulumi.Input[list] = config.subnet_ids
            vpc_id = aws.ec2.get_subnet_output(id=config.subnet_ids[0]).vpc_id
        else:
            vpc_id = aws.ec2.get_vpc_output(default=True).id
            # Its default subnets only (public, one per zone): a subnet added to the default VPC
            # may have no route out, or lie in a Local Zone without Fargate.
            subnet_ids = aws.ec2.get_subnets_output(filters=[{"name": "vpc-id", "values": [vpc_id]},
                                                             {"name": "default-for-az", "values": ["true"]}]).ids
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-job-sg",
            description="Harvester job: no inbound; outbound HTTPS only (portal, S3, SQS, ECR, logs)",
            vpc_id=vpc_id,
            ingress=[],
            egress=[{"protocol": "tcp", "from_port": JOB_EGRESS_PORT, "to_port": JOB_EGRESS_PORT,
                     "cidr_blocks": ["0.0.0.0/0"], "description": "HTTPS"}],
            opts=child,
        )
        # The PoC's name as a prefix, not a fixed name: a fixed name would make a replacement fail
        # while the job queue points at it; the unique suffix lets the new one exist beside it, so
        # Pulumi creates it, points the job queue at it, then deletes the old one.
        self.compute_environment = aws.batch.ComputeEnvironment(
            f"{name}-compute",
            name_prefix=config.compute_environment_name_prefix,
            type="MANAGED",
            compute_resources={
                "type": "FARGATE_SPOT" if config.use_spot else "FARGATE",
                "max_vcpus": config.max_vcpus,
                "subnets": subnet_ids,
                "security_group_ids": [self.security_group.id],
            },
            # Spot or on-demand (useSpot) is a new environment: AWS updates a Fargate one in place
            # only for its subnets, security groups and vCPUs, and the provider would try the type
            # as an in-place update.
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["computeResources.type"]),
        )
        self.job_queue = aws.batch.JobQueue(
            f"{name}-job-queue",
            name=config.job_queue_name,
            state="ENABLED",
            priority=1,
            compute_environment_orders=[{"order": 1, "compute_environment": self.compute_environment.arn}],
            job_state_time_limit_actions=[
                {"action": "CANCEL", "state": "RUNNABLE", "reason": reason,
                 "max_time_seconds": config.runnable_time_limit_seconds}
                for reason in CANCELLABLE_RUNNABLE_REASONS],
            opts=child,
        )
        self.log_group = logs.log_group(
            f"{name}-job-logs", f"/aws/batch/{config.job_definition_name}", config.log_retention_days, self)

        self.token_parameter: Optional[aws.ssm.Parameter] = None
        if args.app_token is not None:
            self.token_parameter = aws.ssm.Parameter(
                f"{name}-app-token",
                name=f"/{PROJECT}/{pulumi.get_stack()}/portal-app-token",
                type="SecureString",
                value=args.app_token,
                description="Socrata app token of the harvester (Batch secret SODA_APP_TOKEN)",
                opts=child,
            )

        execution_statements = [
            iam.allow("PullImageToken", ["ecr:GetAuthorizationToken"], ["*"]),
            iam.allow("PullImage", ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                    "ecr:GetDownloadUrlForLayer"], [self.repository.arn]),
            iam.allow("WriteJobLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                      [iam.log_stream_arn(self.log_group.arn)]),
        ]
        if self.token_parameter is not None:
            execution_statements.append(
                iam.allow("ReadAppToken", ["ssm:GetParameters"], [self.token_parameter.arn]))
        roles = config.role_name_prefixes
        self.execution_role, execution_policy = iam.role(
            f"{name}-execution-role", "ecs-tasks.amazonaws.com", iam.document(*execution_statements), self,
            "Batch execution role of the harvester: pull its image, write its logs, read its token",
            name_prefix=roles["execution"], source_account=account_id)
        self.job_role, job_policy = iam.role(
            f"{name}-job-role", "ecs-tasks.amazonaws.com",
            iam.document(
                # ListBucket makes a HEAD of a missing key answer 404 instead of 403.
                iam.allow("ListBucket", ["s3:ListBucket"], [self.bucket.arn]),
                # The bucket is versioned and the tags go on exactly the stored version: S3 checks
                # s3:*ObjectVersionTagging for tagging calls that name a VersionId.
                iam.allow("StoreDatasets", ["s3:AbortMultipartUpload", "s3:GetObject", "s3:GetObjectTagging",
                                            "s3:GetObjectVersionTagging", "s3:PutObject", "s3:PutObjectTagging",
                                            "s3:PutObjectVersionTagging"],
                          [iam.objects_arn(self.bucket.arn, DATASET_KEY_PATTERN)]),
                iam.allow("AnnounceDatasets", ["sqs:SendMessage"], [self.queue.arn]),
            ),
            self, "Batch job role of the harvester: store datasets in the bucket, announce them on the queue",
            name_prefix=roles["job"], source_account=account_id)

        token_arn = self.token_parameter.arn if self.token_parameter is not None else None
        self.job_definition = aws.batch.JobDefinition(
            f"{name}-job-definition",
            name=config.job_definition_name,
            type="container",
            platform_capabilities=["FARGATE"],
            propagate_tags=True,
            timeout={"attempt_duration_seconds": config.job_timeout_seconds},
            retry_strategy={"attempts": config.job_attempts, "evaluate_on_exits": RETRY_RULES},
            container_properties=pulumi.Output.all(
                image=self.image.repo_digest, execution_role_arn=self.execution_role.arn,
                job_role_arn=self.job_role.arn, bucket=self.bucket.bucket, queue_url=self.queue.url,
                log_group=self.log_group.name, region=region, token_parameter_arn=token_arn,
            ).apply(lambda values: container_properties(config, **values)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[execution_policy, job_policy]),
        )

        # A job that failed for good (every attempt used, stopped by a setting error, or cancelled
        # while blocked) tells the alerts topic; its summary is in the job's log stream. So does a
        # job that cannot start: without this it would wait in RUNNABLE unseen.
        self.failed_job_rule = job_alert(
            f"{name}-job-failed", self.job_queue.arn.apply(failed_job_pattern),
            "A harvest job of this stack failed after its last attempt", FAILED_JOB_ALERT, args.alert_topic_arn, child)
        self.blocked_job_rule = job_alert(
            f"{name}-job-blocked", self.job_queue.arn.apply(blocked_job_pattern),
            "A harvest job of this stack cannot start: it blocks the job queue",
            BLOCKED_JOB_ALERT.format(limit=config.runnable_time_limit_seconds),
            args.alert_topic_arn, child)

        # --- Optional schedule ---------------------------------------------------------------
        self.schedule: Optional[aws.scheduler.Schedule] = None
        self.schedule_alarm: Optional[aws.cloudwatch.MetricAlarm] = None
        if config.harvest_schedule:
            # A group of its own, so the alarm below counts this stack's schedule only.
            schedule_group = aws.scheduler.ScheduleGroup(f"{name}-schedule-group", opts=child)
            scheduler_role, scheduler_policy = iam.role(
                f"{name}-scheduler-role", "scheduler.amazonaws.com",
                iam.document(iam.allow("SubmitHarvest", ["batch:SubmitJob"],
                                       [self.job_queue.arn, self.job_definition.arn])),
                self, "EventBridge Scheduler: submit the harvest job, nothing else",
                # Scheduler documents the schedule group's ARN as the source to trust.
                name_prefix=roles["scheduler"], source_account=account_id, source_arn=schedule_group.arn)
            self.schedule = aws.scheduler.Schedule(
                f"{name}-schedule",
                description="Starts a harvest of the portal",
                group_name=schedule_group.name,
                schedule_expression=config.harvest_schedule,
                flexible_time_window={"mode": "OFF"},
                target={
                    "arn": SUBMIT_JOB_TARGET,
                    "role_arn": scheduler_role.arn,
                    "input": pulumi.Output.all(self.job_queue.arn, self.job_definition.arn).apply(
                        lambda arns: submit_job_input(arns[0], arns[1], config.shards)),
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_policy]),
            )
            # Scheduler retries a failed SubmitJob for a day, then drops it: a harvest that never started.
            self.schedule_alarm = alerts.metric_alarm(
                f"{name}-schedule-alarm", args.alert_topic_arn, self,
                alarm_description="The schedule could not submit a harvest job (dropped after its retries)",
                namespace="AWS/Scheduler",
                metric_name="InvocationDroppedCount",
                dimensions={"ScheduleGroup": schedule_group.name},
                statistic="Sum",
                threshold=0,
            )

        # --- Public attributes for wiring and outputs ---------------------------------------
        self.bucket_name = self.bucket.bucket
        self.bucket_arn = self.bucket.arn
        self.queue_arn = self.queue.arn
        self.queue_url = self.queue.url
        self.dead_letter_queue_url = self.dead_letter_queue.url
        self.image_ref = self.image.repo_digest
        self.job_queue_arn = self.job_queue.arn
        self.job_definition_arn = self.job_definition.arn
        self.submit_job_command = pulumi.Output.all(region, self.job_queue.arn, self.job_definition.arn).apply(
            lambda v: submit_job_command(v[0], v[1], v[2], config.shards))
        self.register_outputs({
            "bucket": self.bucket_name,
            "queueUrl": self.queue_url,
            "deadLetterQueueUrl": self.dead_letter_queue_url,
            "image": self.image_ref,
            "jobQueueArn": self.job_queue_arn,
            "jobDefinitionArn": self.job_definition_arn,
            "submitJobCommand": self.submit_job_command,
        })
