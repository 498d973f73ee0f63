"""Ingestion component under Pulumi mocks: every PoC setting of steps 2-6 and what the PoC lacked."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, cast

import pytest

from components import artifacts
from components.config import PipelineConfig
from components.ingestion import (HARVESTER_COMMAND, RUN_AS_USER, SUBMIT_JOB_TARGET, Ingestion, IngestionArgs,
                                  submit_job_command, submit_job_input)
from contract import JobEnv
from tests.pulumi_mocks import ACCOUNT, CUSTOM_VPC, DEFAULT_SUBNETS, DEFAULT_VPC, REGION, SECRET_SIG, deploy, resolve

TOKEN = "app-token-for-tests"
ALERT_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:ARTI4207-alertas"


def ingestion(config: PipelineConfig, token: str | None = None):
    import pulumi

    def program():
        return Ingestion("ingestion", IngestionArgs(
            config=config, alert_topic_arn=ALERT_TOPIC_ARN, app_token=pulumi.Output.secret(token) if token else None))
    return deploy(program)


@pytest.fixture(scope="module")
def dev():
    return ingestion(PipelineConfig.from_stack_file("dev"))


@pytest.fixture(scope="module")
def with_token_and_schedule():
    config = PipelineConfig.from_stack_file("dev")
    import dataclasses
    return ingestion(dataclasses.replace(config, harvest_schedule="rate(1 day)", shards=4), token=TOKEN)


def container(deployment) -> dict:
    return deployment.one("aws:batch/jobDefinition:JobDefinition").json("containerProperties")


def statements(deployment, role_policy: str) -> dict[str, dict]:
    policy = json.loads(deployment.one("aws:iam/rolePolicy:RolePolicy", role_policy).inputs["policy"])
    return {s["Sid"]: s for s in policy["Statement"]}


def test_every_child_has_the_ingestion_component_as_parent(dev):
    children = [r for r in dev.resources if r.type != "arti4207:ingestion:Ingestion"]
    assert children and {r.parent_type for r in children} == {"arti4207:ingestion:Ingestion"}
    assert dev.one("arti4207:ingestion:Ingestion").parent_type == "pulumi:pulumi:Stack"


def test_repository_is_private_scanned_with_a_lifecycle(dev):
    repo = dev.one("aws:ecr/repository:Repository")
    assert repo.inputs["name"] == "arti4207-repo"
    assert repo.inputs["imageTagMutability"] == "MUTABLE"  # the job runs the image by digest
    assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
    rule = dev.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").json("policy")["rules"][0]
    assert rule["selection"]["countNumber"] == 10 and rule["action"] == {"type": "expire"}


def test_destroy_empties_the_bucket_and_repository_only_without_deletion_protection(dev):
    assert dev.one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is True
    assert dev.one("aws:ecr/repository:Repository").inputs["forceDelete"] is True
    protected = ingestion(dataclasses.replace(PipelineConfig.from_stack_file("dev"), deletion_protection=True))
    assert protected.one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is False
    assert protected.one("aws:ecr/repository:Repository").inputs["forceDelete"] is False


def test_deletion_protection_makes_pulumi_refuse_to_replace_or_delete_the_bucket(dev):
    # A new bucketName replaces the bucket, deleting the old one first (an explicitly named
    # resource); without `protect` a protected stack's update got as far as deleting the bucket's
    # policy, public access block, versioning, encryption and lifecycle before S3 refused to delete
    # the non-empty bucket. Protected, the engine refuses the replacement before any step.
    assert dev.one("aws:s3/bucket:Bucket").options.protect is False
    protected = ingestion(dataclasses.replace(PipelineConfig.from_stack_file("dev"), deletion_protection=True))
    assert protected.one("aws:s3/bucket:Bucket").options.protect is True


def test_deletion_protection_also_protects_what_guards_the_bucket(dev):
    # `pulumi destroy --exclude-protected` (the README's way to tear down the rest) keeps what is
    # protected and what that depends on, not what depends on it: an unprotected policy, public
    # access block, ownership controls, versioning, encryption or lifecycle would be deleted and the
    # kept data bucket left public-capable, plain-HTTP-capable, unversioned and never expired.
    protected = ingestion(dataclasses.replace(PipelineConfig.from_stack_file("dev"), deletion_protection=True))
    name = protected.one("aws:s3/bucket:Bucket").id
    bucket_and_settings = [r for r in protected.resources if r.inputs.get("bucket") == name]
    assert len(bucket_and_settings) == 7
    assert {r.name: r.options.protect for r in bucket_and_settings} == {r.name: True for r in bucket_and_settings}
    assert not any(r.options.protect for r in dev.resources)


def test_image_is_built_from_the_repo_root_for_amd64_tagged_with_the_source_hash(dev):
    image = dev.one("docker:index/image:Image")
    assert image.inputs["build"] == {"context": ".", "dockerfile": "container/Dockerfile", "platform": "linux/amd64"}
    assert image.inputs["imageName"] == (
        f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/arti4207-repo:{artifacts.source_hash()}")


def test_registry_credentials_come_from_ecr_and_are_secret(dev):
    registry = dev.one("docker:index/image:Image").inputs["registry"]
    assert registry[SECRET_SIG]  # the whole registry block is a secret (the password made it one)
    assert registry["value"]["username"] == "AWS" and registry["value"]["password"] == "mock-ecr-password"
    assert any(c.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken" for c in dev.mocks.calls)


def test_job_definition_runs_the_image_by_digest(dev):
    digest = dev.one("docker:index/image:Image").outputs["repoDigest"]
    assert "@sha256:" in digest
    assert container(dev)["image"] == digest == resolve(dev.result.image_ref)


def test_bucket_is_versioned_encrypted_private_and_tls_only(dev):
    assert dev.one("aws:s3/bucket:Bucket").inputs["bucket"] == "arti4207-poc-2023"
    assert dev.one("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"] == {
        "status": "Enabled"}
    sse = dev.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    block = dev.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    ownership = dev.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs["rule"]
    assert ownership == {"objectOwnership": "BucketOwnerEnforced"}
    (deny,) = dev.one("aws:s3/bucketPolicy:BucketPolicy").json("policy")["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == ["arn:aws:s3:::arti4207-poc-2023", "arn:aws:s3:::arti4207-poc-2023/*"]


def test_bucket_lifecycle_aborts_incomplete_uploads_and_expires_old_versions(dev):
    (rule,) = dev.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert rule["status"] == "Enabled"
    assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 90}


def test_queue_is_encrypted_redrives_to_its_dlq_and_outlasts_the_lambda(dev):
    queue = dev.one("aws:sqs/queue:Queue", "ingestion-queue").inputs
    dlq = dev.one("aws:sqs/queue:Queue", "ingestion-dlq").inputs
    assert queue["name"] == "ARTI4207-SQS" and dlq["name"] == "ARTI4207-SQS-dlq"
    assert queue["sqsManagedSseEnabled"] is True and dlq["sqsManagedSseEnabled"] is True
    assert queue["visibilityTimeoutSeconds"] == 6 * 120
    assert json.loads(queue["redrivePolicy"]) == {
        "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ARTI4207-SQS-dlq", "maxReceiveCount": 5}
    assert dlq["messageRetentionSeconds"] == 14 * 24 * 3600


def test_an_alarm_fires_on_the_first_dead_lettered_message(dev):
    alarm = dev.one("aws:cloudwatch/metricAlarm:MetricAlarm", "dlq").inputs
    assert alarm["dimensions"] == {"QueueName": "ARTI4207-SQS-dlq"}
    assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["threshold"] == 0 and alarm["comparisonOperator"] == "GreaterThanThreshold"
    assert alarm["alarmActions"] == alarm["okActions"] == [ALERT_TOPIC_ARN]


def test_an_alarm_fires_when_a_message_outstays_its_retries(dev):
    # SQS deletes an expired message without dead-lettering it: a stuck queue must page someone first.
    alarm = dev.one("aws:cloudwatch/metricAlarm:MetricAlarm", "queue-age").inputs
    assert alarm["dimensions"] == {"QueueName": "ARTI4207-SQS"}
    assert alarm["metricName"] == "ApproximateAgeOfOldestMessage" and alarm["statistic"] == "Maximum"
    assert alarm["threshold"] == 5 * 720 + 900 < 345600  # 5 receives x 6 x 120 s, plus the margin
    assert alarm["alarmActions"] == alarm["okActions"] == [ALERT_TOPIC_ARN]


def batch_event(detail_type: str, queue_arn: str, status: str, reason: str) -> dict:
    """A Batch event as AWS documents it ("Batch Job State Change", "Batch Job Queue Blocked")."""
    return {"version": "0", "id": "c8f9c4b5-76e5-d76a-f980-7011e206042b", "detail-type": detail_type,
            "source": "aws.batch", "account": ACCOUNT, "time": "2022-01-11T23:36:40Z", "region": REGION,
            "resources": [f"arn:aws:batch:{REGION}:{ACCOUNT}:job/4c7599ae", queue_arn],
            "detail": {"jobName": "ARTI4207-harvest", "jobId": "4c7599ae", "jobQueue": queue_arn,
                       "status": status, "statusReason": reason, "attempts": []}}


def matches(rule, event: dict) -> bool:
    """Whether EventBridge would send `event` to `rule` (moto's implementation of event patterns)."""
    from moto.events.models import EventPattern

    return EventPattern.load(rule.inputs["eventPattern"]).matches_event(cast(Any, event))  # typed for its own events


def alert_target(deployment, rule) -> dict:
    [target] = [t.inputs for t in deployment.of_type("aws:cloudwatch/eventTarget:EventTarget")
                if t.inputs["rule"] == rule.outputs["name"]]
    assert target["arn"] == ALERT_TOPIC_ARN
    transformer = target["inputTransformer"]
    assert transformer["inputPaths"] == {"name": "$.detail.jobName", "id": "$.detail.jobId",
                                         "reason": "$.detail.statusReason"}
    assert all(f"<{path}>" in transformer["inputTemplate"] for path in transformer["inputPaths"])
    assert not transformer["inputTemplate"].startswith('"')  # plain text: a JSON string would arrive quoted
    return target


def test_a_job_that_failed_for_good_alerts_with_its_name_and_reason(dev):
    rule = dev.one("aws:cloudwatch/eventRule:EventRule", "job-failed")
    queue_arn = dev.one("aws:batch/jobQueue:JobQueue").outputs["arn"]
    assert rule.json("eventPattern") == {
        "source": ["aws.batch"], "detail-type": ["Batch Job State Change"],
        "detail": {"status": ["FAILED"], "jobQueue": [queue_arn]}}
    assert matches(rule, batch_event("Batch Job State Change", queue_arn, "FAILED", "Essential container exited"))
    assert not matches(rule, batch_event("Batch Job State Change", queue_arn, "SUCCEEDED", ""))
    assert not matches(rule, batch_event("Batch Job State Change", queue_arn + "-other", "FAILED", "x"))
    assert "failed" in alert_target(dev, rule)["inputTransformer"]["inputTemplate"]


def test_a_job_that_cannot_start_alerts_with_its_name_and_reason(dev):
    rule = dev.one("aws:cloudwatch/eventRule:EventRule", "job-blocked")
    queue_arn = dev.one("aws:batch/jobQueue:JobQueue").outputs["arn"]
    reason = "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE - CE(s) associated with the job queue cannot meet ..."
    assert matches(rule, batch_event("Batch Job Queue Blocked", queue_arn, "RUNNABLE", reason))
    assert not matches(rule, batch_event("Batch Job Queue Blocked", queue_arn + "-other", "RUNNABLE", reason))
    assert not matches(rule, batch_event("Batch Job State Change", queue_arn, "RUNNABLE", ""))
    template = alert_target(dev, rule)["inputTransformer"]["inputTemplate"]
    assert "cannot start" in template and "cancelled after 14400 s" in template


def test_a_job_blocked_for_capacity_or_size_is_cancelled_after_the_configured_time(dev):
    actions = dev.one("aws:batch/jobQueue:JobQueue").inputs["jobStateTimeLimitActions"]
    assert sorted(a["reason"] for a in actions) == [
        "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY", "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT"]  # the reasons Batch can act on (its troubleshooting guide)
    assert {(a["action"], a["state"], a["maxTimeSeconds"]) for a in actions} == {("CANCEL", "RUNNABLE", 14400)}
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), runnable_time_limit_seconds=600)
    shorter = ingestion(config).one("aws:batch/jobQueue:JobQueue").inputs["jobStateTimeLimitActions"]
    assert {a["maxTimeSeconds"] for a in shorter} == {600}


def test_queues_refuse_plain_http(dev):
    for policy in dev.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        (deny,) = policy.json("policy")["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    assert len(dev.of_type("aws:sqs/queuePolicy:QueuePolicy")) == 2


def test_compute_environment_is_the_pocs_name_plus_a_unique_suffix_fargate_spot_in_the_default_vpc(dev):
    compute = dev.one("aws:batch/computeEnvironment:ComputeEnvironment").inputs
    # PoC step 6's name as a prefix: a replacement gets a new name, so it cannot collide with the
    # environment the job queue still points at.
    assert compute["namePrefix"] == "ARTI4207-Fargate-" and "name" not in compute
    resources = compute["computeResources"]
    assert resources["type"] == "FARGATE_SPOT" and resources["maxVcpus"] == 1
    assert resources["subnets"] == DEFAULT_SUBNETS
    group = dev.one("aws:ec2/securityGroup:SecurityGroup")
    assert resources["securityGroupIds"] == [group.id] and group.id.startswith("sg-")
    assert group.inputs["vpcId"] == DEFAULT_VPC


def test_switching_spot_and_on_demand_replaces_the_compute_environment_before_deleting_the_old(dev):
    # AWS updates a Fargate compute environment in place only for its subnets, security groups and
    # vCPU counts; the provider does not mark computeResources.type ForceNew, so without this a
    # useSpot change would be tried as an in-place update. Replaced, it is created first (the name
    # prefix gives the new one its own name), the job queue is pointed at it, and only then is the
    # old one disabled and deleted.
    compute = dev.one("aws:batch/computeEnvironment:ComputeEnvironment")
    assert compute.options.replace_on_changes == ("computeResources.type",)
    assert compute.options.delete_before_replace is not True and "name" not in compute.inputs


def test_security_group_allows_no_inbound_and_only_outbound_https(dev):
    group = dev.one("aws:ec2/securityGroup:SecurityGroup").inputs
    assert group.get("ingress", []) == []
    (egress,) = group["egress"]
    assert (egress["protocol"], egress["fromPort"], egress["toPort"]) == ("tcp", 443, 443)


def test_configured_subnets_and_on_demand_fargate_replace_the_defaults():
    import dataclasses
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), subnet_ids=["subnet-0123abcd"], use_spot=False)
    deployment = ingestion(config)
    resources = deployment.one("aws:batch/computeEnvironment:ComputeEnvironment").inputs["computeResources"]
    assert resources["type"] == "FARGATE" and resources["subnets"] == ["subnet-0123abcd"]
    assert deployment.one("aws:ec2/securityGroup:SecurityGroup").inputs["vpcId"] == CUSTOM_VPC
    assert not any(c.token == "aws:ec2/getVpc:getVpc" for c in deployment.mocks.calls)


def test_a_configured_compute_environment_name_is_the_prefix():
    import dataclasses
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), compute_environment_name="arti4207_prod")
    compute = ingestion(config).one("aws:batch/computeEnvironment:ComputeEnvironment").inputs
    assert compute["namePrefix"] == "arti4207_prod-"


def test_roles_have_readable_name_prefixes_after_the_pocs_role_names(with_token_and_schedule):
    prefixes = {r.name: r.inputs.get("namePrefix") for r in with_token_and_schedule.of_type("aws:iam/role:Role")}
    assert prefixes == {
        "ingestion-execution-role": "ARTI4207-ECS-exec-",  # the PoC's ARTI4207-ECS, split in two
        "ingestion-job-role": "ARTI4207-ECS-job-",
        "ingestion-scheduler-role": "ARTI4207-Scheduler-",
    }
    assert all("name" not in r.inputs for r in with_token_and_schedule.of_type("aws:iam/role:Role"))


def test_a_configured_batch_role_name_prefixes_both_batch_roles():
    import dataclasses
    config = dataclasses.replace(PipelineConfig.from_stack_file("dev"), batch_role_name="prod-harvester")
    roles = {r.name: r.inputs["namePrefix"] for r in ingestion(config).of_type("aws:iam/role:Role")}
    assert roles == {"ingestion-execution-role": "prod-harvester-exec-", "ingestion-job-role": "prod-harvester-job-"}


def test_job_queue_uses_the_compute_environment(dev):
    queue = dev.one("aws:batch/jobQueue:JobQueue").inputs
    compute_arn = dev.one("aws:batch/computeEnvironment:ComputeEnvironment").outputs["arn"]
    assert queue["name"] == "ARTI4207-Queue"
    assert queue["computeEnvironmentOrders"] == [{"order": 1, "computeEnvironment": compute_arn}]


def test_job_definition_keeps_the_poc_settings(dev):
    job = dev.one("aws:batch/jobDefinition:JobDefinition").inputs
    assert job["name"] == "ARTI4207-Job" and job["type"] == "container"
    assert job["platformCapabilities"] == ["FARGATE"]
    assert job["timeout"] == {"attemptDurationSeconds": 300}
    props = container(dev)
    assert props["command"] == HARVESTER_COMMAND == ["python3", "/workspace/container/main.py"]
    assert props["ephemeralStorage"] == {"sizeInGiB": 21}
    assert props["networkConfiguration"] == {"assignPublicIp": "ENABLED"}
    assert props["resourceRequirements"] == [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}]


def test_job_runs_as_a_non_root_unprivileged_user(dev):
    props = container(dev)
    assert props["user"] == RUN_AS_USER and props["user"] not in ("root", "0")
    assert props["readonlyRootFilesystem"] is True
    # Fargate runs nothing privileged; Batch asks not to send the field at all (and would answer
    # without it, so every `pulumi up` would see a change).
    assert "privileged" not in props


def test_job_environment_names_bucket_queue_portal_and_selection(dev):
    env = {e["name"]: e["value"] for e in container(dev)["environment"]}
    assert env == {
        JobEnv.BUCKET: "arti4207-poc-2023",
        JobEnv.QUEUE_URL: f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ARTI4207-SQS",
        JobEnv.SODA_DOMAIN: "www.datos.gov.co",
        JobEnv.INVENTORY_ID: "uzcf-b9dh",
        JobEnv.DATASET_LIMIT: "100",
        JobEnv.HARVEST_CONCURRENCY: "4",
        JobEnv.SHARD_COUNT: "1",
        JobEnv.JOB_TIMEOUT: "300",
    }
    assert "secrets" not in container(dev)


def test_the_job_knows_the_timeout_batch_gives_each_attempt(dev):
    # Batch never retries an attempt it stops at its timeout: the job must stop itself first.
    env = {e["name"]: e["value"] for e in container(dev)["environment"]}
    timeout = dev.one("aws:batch/jobDefinition:JobDefinition").inputs["timeout"]["attemptDurationSeconds"]
    assert env[JobEnv.JOB_TIMEOUT] == str(int(timeout))  # Pulumi hands numbers over as floats
    from container.deadline import job_margin
    from container.settings import load_settings
    settings = load_settings({**env, JobEnv.JOB_TIMEOUT: "60"})  # the smallest jobTimeoutSeconds allowed
    assert settings.job_timeout == 60 and job_margin(60) < 60


def test_retry_strategy_retries_spot_reclaims_and_stops_on_configuration_errors(dev):
    strategy = dev.one("aws:batch/jobDefinition:JobDefinition").inputs["retryStrategy"]
    assert strategy["attempts"] == 3
    assert strategy["evaluateOnExits"] == [
        {"onExitCode": "2", "action": "EXIT"},
        {"onReason": "*", "action": "RETRY"},  # a Fargate Spot reclaim, a failed dataset
    ]


def test_job_logs_go_to_a_log_group_with_retention(dev):
    group = dev.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert group == {"name": "/aws/batch/ARTI4207-Job", "retentionInDays": 30}
    options = container(dev)["logConfiguration"]["options"]
    assert container(dev)["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == "/aws/batch/ARTI4207-Job" and options["awslogs-region"] == REGION


def test_job_role_may_only_store_in_this_bucket_and_send_to_this_queue(dev):
    s = statements(dev, "ingestion-job-role-policy")
    bucket = "arn:aws:s3:::arti4207-poc-2023"
    assert s["ListBucket"]["Action"] == ["s3:ListBucket"] and s["ListBucket"]["Resource"] == [bucket]
    assert s["StoreDatasets"]["Action"] == ["s3:AbortMultipartUpload", "s3:GetObject", "s3:GetObjectTagging",
                                            "s3:GetObjectVersionTagging", "s3:PutObject", "s3:PutObjectTagging",
                                            "s3:PutObjectVersionTagging"]
    assert s["StoreDatasets"]["Resource"] == [f"{bucket}/*/*.csv"]  # datasets only: no criteria.json
    assert s["AnnounceDatasets"] == {"Sid": "AnnounceDatasets", "Effect": "Allow", "Action": ["sqs:SendMessage"],
                                     "Resource": [f"arn:aws:sqs:{REGION}:{ACCOUNT}:ARTI4207-SQS"]}
    assert set(s) == {"ListBucket", "StoreDatasets", "AnnounceDatasets"}


def test_execution_role_may_only_pull_this_image_and_write_its_logs(dev):
    s = statements(dev, "ingestion-execution-role-policy")
    assert s["PullImageToken"]["Action"] == ["ecr:GetAuthorizationToken"] and s["PullImageToken"]["Resource"] == ["*"]
    assert s["PullImage"]["Resource"] == [f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/arti4207-repo"]
    assert s["WriteJobLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/batch/ARTI4207-Job:log-stream:*"]
    assert set(s) == {"PullImageToken", "PullImage", "WriteJobLogs"}
    props = container(dev)
    roles = {r.name: r.outputs["arn"] for r in dev.of_type("aws:iam/role:Role")}
    assert props["executionRoleArn"] == roles["ingestion-execution-role"]
    assert props["jobRoleArn"] == roles["ingestion-job-role"]


def test_without_a_token_no_parameter_and_no_schedule_exist(dev):
    assert dev.of_type("aws:ssm/parameter:Parameter") == []
    assert dev.of_type("aws:scheduler/schedule:Schedule") == []
    assert dev.of_type("aws:scheduler/scheduleGroup:ScheduleGroup") == []
    assert [a.name for a in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "schedule" in a.name] == []


def test_app_token_reaches_the_job_as_a_batch_secret_from_a_secure_parameter(with_token_and_schedule):
    d = with_token_and_schedule
    parameter = d.one("aws:ssm/parameter:Parameter")
    assert parameter.inputs["type"] == "SecureString"
    assert parameter.inputs["value"] == {SECRET_SIG: parameter.inputs["value"][SECRET_SIG], "value": TOKEN}
    props = container(d)
    assert props["secrets"] == [{"name": JobEnv.SODA_APP_TOKEN, "valueFrom": parameter.outputs["arn"]}]
    assert TOKEN not in json.dumps(props)  # never in the plain environment
    assert statements(d, "ingestion-execution-role-policy")["ReadAppToken"]["Resource"] == [parameter.outputs["arn"]]


def test_schedule_submits_the_job_as_an_array_with_a_role_limited_to_that_job(with_token_and_schedule):
    d = with_token_and_schedule
    schedule = d.one("aws:scheduler/schedule:Schedule").inputs
    queue_arn = d.one("aws:batch/jobQueue:JobQueue").outputs["arn"]
    definition_arn = d.one("aws:batch/jobDefinition:JobDefinition").outputs["arn"]
    assert schedule["scheduleExpression"] == "rate(1 day)"
    assert schedule["target"]["arn"] == SUBMIT_JOB_TARGET
    assert json.loads(schedule["target"]["input"]) == {
        "JobName": "arti4207-harvest", "JobQueue": queue_arn, "JobDefinition": definition_arn,
        "ArrayProperties": {"Size": 4}}
    role = d.one("aws:iam/role:Role", "scheduler")
    assert schedule["target"]["roleArn"] == role.outputs["arn"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"}
    (submit,) = statements(d, "ingestion-scheduler-role-policy").values()
    assert submit["Action"] == ["batch:SubmitJob"] and submit["Resource"] == [queue_arn, definition_arn]
    env = {e["name"]: e["value"] for e in container(d)["environment"]}
    assert env[JobEnv.SHARD_COUNT] == "4"


def test_a_schedule_that_could_not_submit_the_job_alerts(with_token_and_schedule):
    d = with_token_and_schedule
    group = d.one("aws:scheduler/scheduleGroup:ScheduleGroup").outputs["name"]
    assert d.one("aws:scheduler/schedule:Schedule").inputs["groupName"] == group  # its own group
    alarm = d.one("aws:cloudwatch/metricAlarm:MetricAlarm", "schedule").inputs
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Scheduler", "InvocationDroppedCount")
    assert alarm["dimensions"] == {"ScheduleGroup": group} and alarm["threshold"] == 0
    assert alarm["alarmActions"] == [ALERT_TOPIC_ARN]


def test_submit_job_command_is_ready_to_paste_and_uses_array_size_only_when_sharded(dev):
    assert resolve(dev.result.submit_job_command) == (
        f"aws batch submit-job --region {REGION} --job-name arti4207-harvest "
        f"--job-queue arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/ARTI4207-Queue "
        f"--job-definition arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/ARTI4207-Job:1")
    assert submit_job_command("r", "q", "d", 8).endswith(" --array-properties size=8")
    assert "ArrayProperties" not in json.loads(submit_job_input("q", "d", 1))


def test_the_job_definition_runs_what_the_image_holds_as_the_images_user():
    import re

    from components.config import ROOT

    dockerfile = (ROOT / "container" / "Dockerfile").read_text()
    (cmd,) = re.findall(r"^CMD (.+)$", dockerfile, re.M)
    assert json.loads(cmd) == HARVESTER_COMMAND
    assert re.findall(r"^USER (\S+)$", dockerfile, re.M)[-1] == RUN_AS_USER
    assert "WORKDIR /workspace" in dockerfile and "COPY container/ container/" in dockerfile
