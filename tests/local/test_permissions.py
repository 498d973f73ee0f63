"""Every AWS call the pipeline's code makes is allowed by the IAM policy the stack gives its principal.

moto does not enforce IAM, so a missing action would only show in AWS, as AccessDenied. Here the
pipeline runs in-process against the local emulator (the stack's resources, the bucket versioned
as deployed): the harvester as the Batch job role (a first harvest with a multipart upload, a
rerun that finds everything stored, a failed dataset whose upload is aborted), then the metadata
Lambda with its event source mapping's polling (a message delivered twice, a poison message), then
the criteria Lambda (an object deleted before it is evaluated, a poison notification sent on to the
on-failure destination, as Lambda does with the function's role), each under its own role.
Every botocore call is recorded with its parameters and outcome, turned into the IAM actions and
resources AWS authorizes it as (the Service Authorization Reference: e.g. a tagging call that names
a VersionId is `s3:PutObjectVersionTagging`; a read of a missing key answers 404, as the code
expects, only with `s3:ListBucket` on the bucket, else 403), and checked against the role's policy
from the Pulumi program under mocks.
"""

from __future__ import annotations

import fnmatch
import json
import os
import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable
from urllib.parse import urlparse

import botocore.client
import pytest
from botocore.exceptions import ClientError

from components.config import ROOT, PipelineConfig
from container.main import main as harvester_main
from contract import JobEnv
from local.delivery import SnsAsyncInvoker, SqsEventSourceMapping
from local.demo import load_handlers
from local.emulator import REGION
from local.portal import Fault, PortalServer, generated_dataset, inventory_row, load_snapshot
from tests.pulumi_mocks import ACCOUNT, deploy, stack_config

ROLE_POLICIES = {"job": "ingestion-job-role-policy", "metadata": "processing-metadata-role-policy",
                 "criteria": "notification-criteria-role-policy"}
LARGE = "larg-0001"  # over one 5 MiB part: stored with a multipart upload
SMALL = "gt2j-8ykr"  # a snapshot dataset: its object is deleted before it is evaluated


def _object(params: dict) -> str:
    return f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"


def _versioned(action: str, version_action: str) -> Callable[[dict], tuple[str, str]]:
    return lambda params: (version_action if params.get("VersionId") else action, _object(params))


def _queue(params: dict) -> str:
    account, name = urlparse(params["QueueUrl"]).path.strip("/").split("/")
    return f"arn:aws:sqs:{REGION}:{account}:{name}"


def _table(params: dict) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{params['TableName']}"


# (service, operation) -> the IAM action and resource AWS checks for it.
AUTHORIZED_AS: dict[tuple[str, str], Callable[[dict], tuple[str, str]]] = {
    ("s3", "HeadObject"): _versioned("s3:GetObject", "s3:GetObjectVersion"),
    ("s3", "GetObject"): _versioned("s3:GetObject", "s3:GetObjectVersion"),
    ("s3", "GetObjectTagging"): _versioned("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
    ("s3", "PutObjectTagging"): _versioned("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
    ("s3", "PutObject"): lambda p: ("s3:PutObject", _object(p)),
    ("s3", "CreateMultipartUpload"): lambda p: ("s3:PutObject", _object(p)),
    ("s3", "UploadPart"): lambda p: ("s3:PutObject", _object(p)),
    ("s3", "CompleteMultipartUpload"): lambda p: ("s3:PutObject", _object(p)),
    ("s3", "AbortMultipartUpload"): lambda p: ("s3:AbortMultipartUpload", _object(p)),
    ("sqs", "SendMessage"): lambda p: ("sqs:SendMessage", _queue(p)),
    ("sqs", "ReceiveMessage"): lambda p: ("sqs:ReceiveMessage", _queue(p)),
    ("sqs", "DeleteMessage"): lambda p: ("sqs:DeleteMessage", _queue(p)),
    ("sqs", "GetQueueAttributes"): lambda p: ("sqs:GetQueueAttributes", _queue(p)),
    ("dynamodb", "PutItem"): lambda p: ("dynamodb:PutItem", _table(p)),
    ("dynamodb", "GetItem"): lambda p: ("dynamodb:GetItem", _table(p)),
    ("dynamodb", "UpdateItem"): lambda p: ("dynamodb:UpdateItem", _table(p)),
    ("sns", "Publish"): lambda p: ("sns:Publish", p["TopicArn"]),
}


# Calls the local stand-ins make in AWS's place, which AWS does not make with the role: the event
# source mapping lets a failed record's visibility timeout run out; local/delivery.py ends it at
# once with ChangeMessageVisibility(0) so the demo need not wait.
LOCAL_SHORTCUTS = {("sqs", "ChangeMessageVisibility")}

MISSING = ("404", "NoSuchKey", "NoSuchVersion")


def authorized_as(service: str, operation: str, params: dict, error: str) -> list[tuple[str, str]] | None:
    """The (action, resource) pairs AWS checks for a call; None when the call is not mapped."""
    authorize = AUTHORIZED_AS.get((service, operation))
    if authorize is None:
        return None
    needed = [authorize(params)]
    if service == "s3" and operation in ("HeadObject", "GetObject") and error in MISSING:
        needed.append(("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}"))  # else 403, not 404
    return needed


def allowed(policy: dict, action: str, resource: str) -> bool:
    """Whether an Allow statement of `policy` (there are no Deny statements) covers the call."""
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        assert statement["Effect"] == "Allow"
        if (any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions)
                and any(fnmatch.fnmatchcase(resource, r) for r in resources)):
            return True
    return False


class Recorder:
    """Records every botocore call made while a principal is acting (threads included)."""

    def __init__(self) -> None:
        self.principal: str | None = None
        self.calls: list[tuple[str, str, str, dict, str]] = []  # principal, service, operation, params, error code

    @contextmanager
    def acting_as(self, principal: str) -> Iterator[None]:
        self.principal = principal
        try:
            yield
        finally:
            self.principal = None

    def handler(self, principal: str, handler: Callable) -> Callable:
        def invoked(event: dict, context: Any) -> Any:
            with self.acting_as(principal):
                return handler(event, context)
        return invoked


@pytest.fixture(scope="module")
def policies() -> dict[str, dict]:
    stack = deploy(lambda: runpy.run_path(str(ROOT / "__main__.py")), stack_config())
    return {principal: json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
            for principal, name in ROLE_POLICIES.items()}


@pytest.fixture()
def recorder(monkeypatch) -> Recorder:
    recorder = Recorder()
    make_api_call = botocore.client.BaseClient._make_api_call

    def recorded(client: Any, operation: str, params: dict) -> Any:
        principal, error = recorder.principal, ""
        try:
            return make_api_call(client, operation, params)
        except ClientError as failure:
            error = failure.response.get("Error", {}).get("Code", "")
            raise
        finally:
            if principal is not None:
                recorder.calls.append((principal, client.meta.service_model.service_name, operation, params, error))

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
    return recorder


@pytest.fixture()
def environment() -> Iterator[None]:
    saved = dict(os.environ)  # the handlers' modules read their settings from os.environ
    yield
    os.environ.clear()
    os.environ.update(saved)


def run_pipeline(aws: Any, recorder: Recorder) -> None:
    config, resources = aws.config, aws.resources
    portal = load_snapshot()
    large = generated_dataset(LARGE, 100_000)  # about 9 MB
    portal.add(large, inventory_row(large))
    sqs, sns = aws.client("sqs"), aws.client("sns")
    with PortalServer(portal) as server:
        job = {**aws.environment, **config.job_environment(bucket=resources.bucket, queue_url=resources.queue_url),
               JobEnv.SODA_DOMAIN: server.url, JobEnv.PART_SIZE_MIB: "5", JobEnv.PAGE_SIZE: "20000",
               JobEnv.LOG_LEVEL: "WARNING"}
        with recorder.acting_as("job"):
            assert harvester_main(job) == 0  # stores everything
            assert harvester_main(job) == 0  # finds everything stored and announced
            server.faults.inject(LARGE, Fault.truncated(min_offset=80_000))  # after a part went up
            assert harvester_main({**job, JobEnv.FORCE: "true", JobEnv.DATASET_IDS: LARGE}) == 1  # aborted
    assert len(large.data) > 8 * 1024 * 1024
    # The error paths: a message delivered twice (the item is read back), a poison message.
    [announced] = sqs.receive_message(QueueUrl=resources.queue_url, MaxNumberOfMessages=1,
                                      VisibilityTimeout=0)["Messages"]
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody=announced["Body"])
    sqs.send_message(QueueUrl=resources.queue_url, MessageBody="not a harvest message")
    metadata, criteria = load_handlers(config, resources)

    class Invoker(SnsAsyncInvoker):
        def send_on_failure(self, record: dict) -> None:
            with recorder.acting_as("criteria"):  # Lambda sends it with the function's role
                super().send_on_failure(record)

    notifications = Invoker(
        sqs, sns, resources.topic_arn, recorder.handler("criteria", criteria.handler),
        function_name=config.criteria_function_name, retry_attempts=config.criteria_retry_attempts,
        dead_letter_queue_url=resources.criteria_dead_letter_queue_url, region=REGION)
    mapping = SqsEventSourceMapping(sqs, resources.queue_url, resources.queue_arn, metadata.handler,
                                    function_name=config.metadata_function_name, batch_size=config.batch_size,
                                    region=REGION)
    with recorder.acting_as("metadata"):  # the mapping polls the queue with the function's role
        processed = list(mapping.drain())
    # More error paths: a notification of an object deleted since, a poison notification.
    s3 = aws.client("s3")
    gone = s3.list_object_versions(Bucket=resources.bucket, Prefix=f"{SMALL}/")["Versions"][0]
    s3.delete_object(Bucket=resources.bucket, Key=gone["Key"], VersionId=gone["VersionId"])
    sns.publish(TopicArn=resources.topic_arn, Message="not a notification")
    evaluated = list(notifications.drain())
    notifications.unsubscribe()
    poison = [i for i in processed if i.failed_ids]
    assert len({i.record_ids[0] for i in poison}) == 1  # the poison message only, each time it came
    assert len([i for i in evaluated if i.failed_ids]) == 1  # the poison notification only


def test_every_call_of_the_job_and_the_lambdas_is_allowed_by_its_role(local_aws, policies, recorder, environment):
    assert local_aws.config == PipelineConfig.from_stack_file("dev")

    run_pipeline(local_aws, recorder)

    denied, unmapped, seen = [], set(), set()
    for principal, service, operation, params, error in recorder.calls:
        if (service, operation) in LOCAL_SHORTCUTS:
            continue
        needed = authorized_as(service, operation, params, error)
        if needed is None:
            unmapped.add(f"{service}:{operation}")
            continue
        for action, resource in needed:
            seen.add((principal, action))
            if not allowed(policies[principal], action, resource):
                denied.append(f"{principal}: {service} {operation} -> {action} on {resource}")
    assert not unmapped, f"map these calls to the IAM action AWS checks: {sorted(unmapped)}"
    assert not denied, "\n".join(sorted(set(denied)))
    # The run took the paths that need the version-specific and multipart actions.
    assert {("job", "s3:PutObjectVersionTagging"), ("job", "s3:GetObjectVersionTagging"), ("job", "s3:ListBucket"),
            ("job", "s3:AbortMultipartUpload"), ("metadata", "s3:GetObjectVersion"),
            ("metadata", "sqs:ReceiveMessage"), ("criteria", "dynamodb:UpdateItem"),
            # ... and the error paths: a redelivery, a missing object, the on-failure destination.
            ("metadata", "dynamodb:GetItem"), ("criteria", "s3:ListBucket"), ("criteria", "sqs:SendMessage")} <= seen
