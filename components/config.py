"""Typed stack configuration: every setting of the PoC, with the PoC's value as default where
the PoC sets one (a console default it left is replaced where a real pipeline needs more; the
README's Configuration section says which and why).

`PipelineConfig` is the one source of truth for names, sizes and timeouts. The Pulumi program
builds it from `pulumi.Config` (`from_pulumi`), the local runner from `Pulumi.<stack>.yaml`
(`from_stack_file`), so the deployed stack and the local emulator cannot drift apart.
This module does not import pulumi at module level: the local runner uses it without the engine.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from contract import DATASET_ID_PATTERN, JobEnv, LambdaEnv, Services, portal_port, portal_problem

PROJECT = "arti4207"
ROOT = Path(__file__).resolve().parent.parent

# The retention periods CloudWatch Logs accepts (PutRetentionPolicy).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)
LAMBDA_RUNTIMES = ("python3.11", "python3.12", "python3.13", "python3.14")
LAMBDA_ARCHITECTURES = ("x86_64", "arm64")
# EventBridge Scheduler expressions: rate(1 day), rate(6 hours), cron(0 5 * * ? *) (minutes, hours,
# day of month, month, day of week, year), at(2030-01-01T05:00:00) (once).
SCHEDULE_PATTERN = re.compile(
    r"^(rate\(\s*1\s+(minute|hour|day)\s*\)|rate\(\s*([2-9]|[1-9]\d+)\s+(minutes|hours|days)\s*\)"
    r"|cron\(\s*(?P<cron>(\S+\s+){5}\S+)\s*\)|at\((?P<at>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\))$"
)
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?,/#-]+")
_CRON_FIELDS = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))
_CRON_DAY_FIELDS = (2, 4)  # day of month, day of week: one of them is `?`, and nothing else is


class ConfigError(ValueError):
    """A stack setting outside its allowed values; the message names the key."""


def _in_range(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}"
    return check


def _one_of(options: tuple) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in options else f"must be one of {', '.join(map(str, options))}"
    return check


def _schedule(value: str) -> str | None:
    """A Scheduler expression; a cron one as AWS's cron rules want it (one of the two day fields
    `?`: a Unix habit like `cron(0 5 * * * *)` would only fail when the schedule is created)."""
    if value == "":
        return None
    match = SCHEDULE_PATTERN.fullmatch(value)
    if match is None:
        return "is malformed (example: rate(1 day) or cron(0 5 * * ? *))"
    if match["at"] is not None:
        try:
            datetime.fromisoformat(match["at"])
        except ValueError:
            return "has no such date and time in at(...)"
        return None
    if match["cron"] is not None:
        fields = match["cron"].split()
        if not all(_CRON_FIELD.fullmatch(field) for field in fields):
            return "has a cron field with characters cron does not use"
        if any("?" in field and not (i in _CRON_DAY_FIELDS and field == "?") for i, field in enumerate(fields)):
            return "may use ? only as the whole day-of-month or day-of-week field"
        if [fields[i] for i in _CRON_DAY_FIELDS].count("?") != 1:
            return "must have ? in exactly one of the day-of-month and day-of-week fields (e.g. cron(0 5 * * ? *))"
        for name, field, (low, high) in zip(_CRON_FIELDS, fields, _CRON_RANGES):
            for mark, number in re.findall(r"([/#]?)(\d+)", field):
                top = {"/": high, "#": 5}.get(mark, high)
                if not (1 if mark else low) <= int(number) <= top:
                    return f"has {mark}{number} in the {name} field of cron (allowed: {1 if mark else low}-{top})"
    return None


def _matches(pattern: re.Pattern, example: str) -> Callable[[Any], str | None]:
    def check(value: str) -> str | None:
        return None if pattern.fullmatch(value) else f"is malformed (example: {example})"
    return check


def _setting(default: Any, poc: str, doc: str, check: Callable[[Any], str | None] | None = None):
    """A config field: `poc` names the PoC step the default comes from, `doc` says what it is."""
    meta = {"poc": poc, "doc": doc, "check": check}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def field_default(f: dataclasses.Field) -> Any:
    """A setting's default: its value, or a fresh copy from its factory (lists)."""
    if f.default is not dataclasses.MISSING:
        return f.default
    factory = f.default_factory
    return factory() if callable(factory) else None


# SQS, SNS, Lambda and Batch names: letters, digits, hyphens and underscores (no dots), each
# service with its own length limit.
_NAME_CHARS = "A-Za-z0-9_-"
_ROLE_CHARS = "A-Za-z0-9_+=,.@-"  # IAM role names
DLQ_SUFFIX = "-dlq"
# The provider completes a name_prefix with a 26-character unique suffix (timestamp + counter),
# so a role's prefix (IAM: names up to 64) is at most 38 characters.
UNIQUE_SUFFIX_LENGTH = 26
ROLE_NAME_PREFIX_MAX = 64 - UNIQUE_SUFFIX_LENGTH
_SCHEDULER_ROLE_PREFIX = f"{PROJECT.upper()}-Scheduler-"  # the PoC has no schedule, hence no key
# Fargate's task sizes (AWS Batch / ECS): the memory values, in MiB, each vCPU value allows.
FARGATE_MEMORY_MIB: dict[str, tuple[int, ...]] = {
    "0.25": (512, 1024, 2048),
    "0.5": tuple(range(1024, 4096 + 1, 1024)),
    "1": tuple(range(2048, 8192 + 1, 1024)),
    "2": tuple(range(4096, 16384 + 1, 1024)),
    "4": tuple(range(8192, 30720 + 1, 1024)),
    "8": tuple(range(16384, 61440 + 1, 4096)),
    "16": tuple(range(32768, 122880 + 1, 8192)),
}


def _name(rule: str, high: int, *, low: int = 1, chars: str = _NAME_CHARS,
          first: str | None = None) -> Callable[[Any], str | None]:
    """A name of `low`-`high` characters of `chars` (the first one of `first`, if given); `rule`
    says whose limit it is, so the error explains itself."""
    head = f"[{first}]" if first else f"[{chars}]"
    pattern = re.compile(f"{head}[{chars}]{{{low - 1},{high - 1}}}")
    shape = f"{low}-{high} characters of {chars}" + (f", starting with one of {first}" if first else "")

    def check(value: str) -> str | None:
        return None if pattern.fullmatch(value) else f"must be {shape} ({rule})"
    return check


_SQS_QUEUE = _name("SQS queue name", 80)
# Deliberately loose (a mailbox's real syntax is the mail server's business): one @, a dot in
# the domain, no spaces. SNS sends each address a confirmation email anyway.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


# EC2 subnet ids (8 or 17 hex digits). Batch on Fargate takes at most 16 subnets per compute
# environment (ComputeResource.subnets); a malformed or 17th one fails only mid-deploy, in
# CreateComputeEnvironment (the program looks up the first subnet alone, for its VPC).
_SUBNET_ID = re.compile(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
FARGATE_MAX_SUBNETS = 16


def _subnets(values: list) -> str | None:
    bad = [v for v in values if not _SUBNET_ID.fullmatch(v)]
    if bad:
        return f"must be subnet ids (subnet- and 8 or 17 hex digits): {', '.join(map(repr, bad))} is not"
    if len(values) > FARGATE_MAX_SUBNETS:
        return f"may list at most {FARGATE_MAX_SUBNETS} subnets (Batch on Fargate; {len(values)} given)"
    return None


def _emails(values: list) -> str | None:
    bad = [v for v in values if not _EMAIL.fullmatch(v)]
    return f"must be email addresses ({', '.join(map(repr, bad))} is not)" if bad else None


def _describe(values: tuple[int, ...]) -> str:
    """`one of 512, 1024, 2048`, or `2048-8192 in steps of 1024` for a longer even series."""
    step = values[1] - values[0]
    if len(values) > 3 and values == tuple(range(values[0], values[-1] + 1, step)):
        return f"{values[0]}-{values[-1]} in steps of {step}"
    return f"one of {', '.join(map(str, values))}"


# Room above the retries' span before the queue's age alarm fires.
QUEUE_AGE_ALARM_MARGIN_SECONDS = 15 * 60

# The only port the job's security group lets out (the portal, S3, SQS, ECR and logs are HTTPS).
JOB_EGRESS_PORT = 443


def _portal(value: str) -> str | None:
    """The job's own SODA_DOMAIN rule, and a port its security group lets out."""
    if problem := portal_problem(value):
        return problem
    if portal_port(value) != JOB_EGRESS_PORT:
        return f"must be reached on port {JOB_EGRESS_PORT} (the job's security group allows HTTPS out only)"
    return None


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# S3's other naming rules (general purpose buckets): no adjacent periods (or a period next to a
# hyphen), not an IP address, none of the reserved prefixes and suffixes.
_BUCKET_FORBIDDEN = re.compile(r"\.\.|\.-|-\.|^\d+\.\d+\.\d+\.\d+$|^(xn--|sthree-|amzn-s3-demo-)"
                               r"|(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$")
# ECR's RepositoryName (botocore's model): 2-256 characters.
_REPO = re.compile(r"^(?=.{2,256}$)[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")


def _bucket(value: str) -> str | None:
    if not _BUCKET.fullmatch(value) or _BUCKET_FORBIDDEN.search(value):
        return "is malformed: 3-63 lower-case letters, digits, hyphens and periods, no '..', not an IP address, " \
               "no reserved prefix (xn--, sthree-) or suffix (-s3alias, --ol-s3) (example: arti4207-poc-2023)"
    return None


@dataclass(frozen=True)
class PipelineConfig:
    # Step 1: IAM roles, by their PoC names. These are name prefixes: the provider adds a unique
    # suffix, so a replaced role never collides with the one still in use.
    batch_role_name: str = _setting(
        "ARTI4207-ECS", "1", "IAM role name prefix of the Batch job: `<value>-exec-` (execution), `<value>-job-` (job)",
        _name(f"IAM role name_prefix, at most {ROLE_NAME_PREFIX_MAX} with -exec-",
              ROLE_NAME_PREFIX_MAX - len("-exec-"), chars=_ROLE_CHARS))
    metadata_role_name: str = _setting(
        "ARTI4207-Lambda-Metadata", "1", "IAM role name prefix of the metadata Lambda (`<value>-`)",
        _name(f"IAM role name_prefix, at most {ROLE_NAME_PREFIX_MAX} with -", ROLE_NAME_PREFIX_MAX - 1,
              chars=_ROLE_CHARS))
    # Step 2: ECR.
    repository_name: str = _setting("arti4207-repo", "2", "private ECR repository of the harvester image",
                                    _matches(_REPO, "arti4207-repo"))
    # Step 3: SQS.
    queue_name: str = _setting("ARTI4207-SQS", "3", "standard queue announcing stored datasets",
                               _name(f"SQS queue name, at most 80 with its DLQ's {DLQ_SUFFIX}", 80 - len(DLQ_SUFFIX)))
    max_receive_count: int = _setting(5, "-", "receives before a message goes to the DLQ", _in_range(1, 1000))
    # SQS allows 60 s to 14 days. The DLQ keeps its messages the longest SQS allows: they wait for a person.
    message_retention_seconds: int = _setting(4 * 24 * 3600, "3", "how long the queue keeps a message "
                                              "(the console's 4 days)", _in_range(60, 14 * 24 * 3600))
    dead_letter_retention_seconds: int = _setting(14 * 24 * 3600, "-", "how long each DLQ keeps a message",
                                                  _in_range(60, 14 * 24 * 3600))
    # Step 4: S3.
    bucket_name: str = _setting("arti4207-poc-2023", "4", "bucket of the harvested datasets",
                                _bucket)
    # Step 6: Batch.
    # A name prefix, not a name: a fixed name would make a replacement fail while the job queue
    # still points at the old environment. Batch allows 128 characters, starting with a letter
    # or digit; the provider keeps 26 of them for the unique suffix.
    compute_environment_name: str = _setting(
        "ARTI4207-Fargate", "6", "Batch compute environment: `<value>-` + a unique suffix",
        _name(f"Batch compute environment name_prefix, at most {128 - UNIQUE_SUFFIX_LENGTH} with -",
              128 - UNIQUE_SUFFIX_LENGTH - 1, first="A-Za-z0-9"))
    use_spot: bool = _setting(True, "6", "run the job on Fargate Spot (else on-demand Fargate)")
    max_vcpus: int = _setting(1, "6", "max vCPUs of the compute environment (array jobs share them)",
                              _in_range(1, 256))
    subnet_ids: list = _setting([], "6", "subnets of the compute environment; empty: the default VPC's default subnets",
                                _subnets)
    job_queue_name: str = _setting("ARTI4207-Queue", "6", "Batch job queue",
                                   _name("Batch job queue name", 128, first="A-Za-z0-9"))
    job_definition_name: str = _setting("ARTI4207-Job", "6", "Batch job definition",
                                        _name("Batch job definition name", 128, first="A-Za-z0-9"))
    job_timeout_seconds: int = _setting(300, "6", "execution timeout of one job attempt (the job stops a "
                                        "margin before it, 30 s of 300, and exits 1 so Batch retries)",
                                        _in_range(60, 1209600))
    ephemeral_storage_gib: int = _setting(21, "6", "Fargate ephemeral storage", _in_range(21, 200))
    assign_public_ip: bool = _setting(True, "6", "give the task a public IP (needed in the default VPC)")
    job_vcpu: str = _setting("1", "6", "vCPU of the job container", _one_of(tuple(FARGATE_MEMORY_MIB)))
    # Checked against jobVcpu too (__post_init__): Fargate only runs the sizes in its table.
    job_memory_mib: int = _setting(2048, "6", "memory of the job container, as Fargate allows for jobVcpu "
                                   "(1 vCPU: 2048-8192)", _in_range(512, 122880))
    job_attempts: int = _setting(3, "-", "attempts per job (Spot reclaims and failures)", _in_range(1, 10))
    # AWS's own example waits 4 hours for capacity; Batch allows 10 minutes to 24 hours.
    runnable_time_limit_seconds: int = _setting(
        14400, "-", "a job that cannot start this long for want of capacity, or too large for maxVcpus, "
        "is cancelled (it fails and alerts; the next can start)", _in_range(600, 86400))
    harvest_schedule: str = _setting("", "-", "EventBridge Scheduler expression: `rate(1 day)`, AWS cron with `?` in "
                                     "one day field (`cron(0 5 * * ? *)`, UTC) or `at(...)`; empty: no schedule",
                                     _schedule)
    shards: int = _setting(1, "-", "array size: the selection is split over this many tasks",
                           _in_range(1, 10000))
    # The harvester (PoC main.py).
    portal_domain: str = _setting("www.datos.gov.co", "5", "Socrata portal the job harvests (host name, or "
                                  "https:// URL; port 443)", _portal)
    inventory_id: str = _setting("uzcf-b9dh", "5", "asset inventory dataset of the portal",
                                 _matches(DATASET_ID_PATTERN, "uzcf-b9dh"))
    dataset_limit: int = _setting(100, "5", "datasets per harvest (PoC COUNT); 0: every eligible one",
                                  _in_range(0, 1000000))
    harvest_concurrency: int = _setting(4, "-", "datasets downloaded at once by one task", _in_range(1, 64))
    # Step 7: DynamoDB.
    table_name: str = _setting("ARTI4207-Dynamo", "7", "metadata table (partition key HASH, sort key ID)",
                               _name("DynamoDB table name", 255, low=3, chars="A-Za-z0-9_.-"))
    deletion_protection: bool = _setting(False, "-", "DynamoDB deletion protection, and Pulumi `protect` on the "
                                         "table and the bucket with its settings (no update may replace them); also keeps `pulumi "
                                         "destroy` from deleting a non-empty bucket or ECR repository (on for production)")
    # Step 8: SNS.
    topic_name: str = _setting("ARTI4207-topico", "8", "standard topic announcing processed datasets; "
                               "also names the DLQ of its failed deliveries",
                               _name(f"SNS topic name, at most 80 with its DLQ's {DLQ_SUFFIX}", 80 - len(DLQ_SUFFIX)))
    # Alerts: not in the PoC, which had no alarms. Every alarm and every failed or blocked harvest
    # job goes to this topic; the addresses below get it by email.
    alert_topic_name: str = _setting("ARTI4207-alertas", "-",
                                     "topic of the alarms and of failed or blocked harvest jobs",
                                     _name("SNS topic name", 256))
    alert_emails: list = _setting([], "-", "email addresses subscribed to the alerts topic (each must "
                                  "confirm the email SNS sends)", _emails)
    # Steps 9-10: Lambda.
    metadata_function_name: str = _setting("ARTI4207-Lambda", "9", "metadata Lambda",
                                           _name("Lambda function name", 64))
    criteria_function_name: str = _setting("ARTI4207-Lambda-Criterio", "10",
                                           "criteria Lambda; also names its DLQ and prefixes its role",
                                           _name("Lambda function name", 64))
    lambda_runtime: str = _setting("python3.11", "9", "Python runtime of both Lambdas", _one_of(LAMBDA_RUNTIMES))
    lambda_architecture: str = _setting("x86_64", "9", "instruction set of both Lambdas",
                                        _one_of(LAMBDA_ARCHITECTURES))
    batch_size: int = _setting(1, "9", "SQS event source mapping batch size", _in_range(1, 10))
    metadata_memory_mb: int = _setting(256, "9", "memory of the metadata Lambda", _in_range(128, 10240))
    metadata_timeout_seconds: int = _setting(120, "9", "timeout of the metadata Lambda", _in_range(1, 900))
    criteria_memory_mb: int = _setting(512, "10", "memory of the criteria Lambda", _in_range(128, 10240))
    criteria_timeout_seconds: int = _setting(300, "10", "timeout of the criteria Lambda", _in_range(1, 900))
    criteria_retry_attempts: int = _setting(2, "10", "retries of a failed asynchronous invocation",
                                            _in_range(0, 2))
    # Cross-cutting.
    log_retention_days: int = _setting(30, "-", "retention of every log group", _one_of(LOG_RETENTION_DAYS))
    # Added by the infrastructure program (issue 2).
    # The Powertools the Lambdas run is the release the tests run (requirements-dev.txt; a test
    # keeps the two equal). Its AWS-published layer is looked up at deploy time in the SSM
    # parameter AWS keeps for exactly that release, so no layer number is guessed here.
    powertools_version: str = _setting(
        "3.37.0", "-", "aws-lambda-powertools release the Lambdas run, from AWS's published layer",
        _matches(re.compile(r"\d+\.\d+\.\d+"), "3.37.0"))
    powertools_layer_version: int = _setting(
        0, "-", "pin the AWS-published Powertools layer's number instead (0: look it up for powertoolsVersion)",
        _in_range(0, 1000))
    image_retention_count: int = _setting(10, "2", "harvester images the ECR lifecycle policy keeps",
                                          _in_range(1, 1000))
    noncurrent_version_days: int = _setting(90, "4", "days a replaced object version is kept (versioned bucket)",
                                            _in_range(1, 36500))
    abort_multipart_days: int = _setting(1, "4", "days before an unfinished multipart upload is aborted",
                                         _in_range(1, 365))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            problem = check(getattr(self, f.name)) if check else None
            if problem:
                raise ConfigError(f"{PROJECT}:{config_key(f.name)} {problem} (got {getattr(self, f.name)!r})")
        if float(self.job_vcpu) > self.max_vcpus:
            raise ConfigError(f"{PROJECT}:jobVcpu must be at most {PROJECT}:maxVcpus ({self.max_vcpus}): the "
                              f"compute environment could never start the job (got {self.job_vcpu})")
        memory = FARGATE_MEMORY_MIB[self.job_vcpu]
        if self.job_memory_mib not in memory:
            raise ConfigError(f"{PROJECT}:jobMemoryMiB must be {_describe(memory)} when {PROJECT}:jobVcpu is "
                              f"{self.job_vcpu} (Fargate vCPU/memory combinations) (got {self.job_memory_mib})")
        # The default VPC's default subnets route to an internet gateway, with no NAT gateway: a
        # Fargate task there without a public IP cannot pull its image, read its secret or reach the
        # portal, so every job would fail before it starts (Batch: "If the subnets ... don't have NAT
        # gateways attached, the assignPublicIp parameter in the job definition must be set to ENABLED").
        if not self.assign_public_ip and not self.subnet_ids:
            raise ConfigError(f"{PROJECT}:assignPublicIp must be true when {PROJECT}:subnetIds is empty: the default "
                              f"VPC's subnets have no NAT gateway, so a task without a public IP could not pull its "
                              f"image nor reach the portal; to turn it off, set {PROJECT}:subnetIds to private subnets "
                              f"with a NAT gateway (got {self.assign_public_ip})")
        # A message keeps its first enqueue time in the DLQ, so a DLQ that keeps messages for less
        # time than the queue would drop them as soon as they arrive.
        if self.dead_letter_retention_seconds < self.message_retention_seconds:
            raise ConfigError(f"{PROJECT}:deadLetterRetentionSeconds must be at least {PROJECT}:messageRetentionSeconds "
                              f"({self.message_retention_seconds}): SQS expires a dead letter by the time it was first "
                              f"sent (got {self.dead_letter_retention_seconds})")
        # A failing message must reach the DLQ before the queue expires it, with time left for the
        # age alarm (set just above the retries' span) to fire: SQS deletes an expired message.
        if self.queue_age_alarm_seconds >= self.message_retention_seconds:
            raise ConfigError(
                f"{PROJECT}:messageRetentionSeconds must be more than {self.queue_age_alarm_seconds} s: "
                f"{PROJECT}:maxReceiveCount ({self.max_receive_count}) receives of "
                f"{self.queue_visibility_timeout_seconds} s each (6 x {PROJECT}:metadataTimeoutSeconds) plus "
                f"{QUEUE_AGE_ALARM_MARGIN_SECONDS} s for the age alarm, or a failing message expires before it "
                f"reaches the DLQ (got {self.message_retention_seconds})")
        # Two settings must not name one thing: SQS answers a second CreateQueue of an existing
        # queue with that queue, so two stack resources would own one DLQ (and fight over its policy).
        for kind, names in (
                ("queue", {"queueName": self.queue_name, "queueName (its DLQ)": self.dead_letter_queue_name,
                           "criteriaFunctionName (its DLQ)": self.criteria_dead_letter_queue_name,
                           "topicName (its DLQ)": self.topic_dead_letter_queue_name}),
                ("function", {"metadataFunctionName": self.metadata_function_name,
                              "criteriaFunctionName": self.criteria_function_name}),
                ("topic", {"topicName": self.topic_name, "alertTopicName": self.alert_topic_name})):
            seen: dict[str, str] = {}
            for key, value in names.items():
                if value in seen:
                    raise ConfigError(f"{PROJECT}:{key} and {PROJECT}:{seen[value].split(' ')[0]} give two {kind}s one "
                                      f"name, {value!r}: each needs its own")
                seen[value] = key
        if len(set(self.alert_emails)) != len(self.alert_emails):
            raise ConfigError(f"{PROJECT}:alertEmails lists an address twice (got {self.alert_emails!r})")
        # Derived names must be valid too. The field rules keep the DLQ names within SQS's limit
        # today (76 + 4, 64 + 4, 76 + 4); this keeps it so if a rule or the suffix changes.
        for key, value, dlq in (("queueName", self.queue_name, self.dead_letter_queue_name),
                                ("criteriaFunctionName", self.criteria_function_name,
                                 self.criteria_dead_letter_queue_name),
                                ("topicName", self.topic_name, self.topic_dead_letter_queue_name)):
            problem = _SQS_QUEUE(dlq)
            if problem:
                raise ConfigError(f"{PROJECT}:{key} gives the dead-letter queue name {dlq!r}, which {problem} "
                                  f"(got {value!r})")

    # Derived settings: computed, never configured, so they cannot disagree with their inputs.
    @property
    def dead_letter_queue_name(self) -> str:
        return f"{self.queue_name}{DLQ_SUFFIX}"

    @property
    def criteria_dead_letter_queue_name(self) -> str:
        return f"{self.criteria_function_name}{DLQ_SUFFIX}"

    @property
    def topic_dead_letter_queue_name(self) -> str:
        """Where SNS puts a notification it could not deliver to the criteria Lambda."""
        return f"{self.topic_name}{DLQ_SUFFIX}"

    @property
    def compute_environment_name_prefix(self) -> str:
        return f"{self.compute_environment_name}-"

    @property
    def role_name_prefixes(self) -> dict[str, str]:
        """The name_prefix of each IAM role, by principal: the PoC's role names where it has them."""
        return {
            # The PoC gave both to one role, ARTI4207-ECS; here each has only what it needs.
            "execution": f"{self.batch_role_name}-exec-",
            "job": f"{self.batch_role_name}-job-",
            "metadata": f"{self.metadata_role_name}-",
            # The PoC's criteria Lambda kept the console's default role: named after the function,
            # cut to fit (a function name may be 64 characters, a role prefix 38).
            "criteria": f"{self.criteria_function_name[:ROLE_NAME_PREFIX_MAX - 1]}-",
            "scheduler": _SCHEDULER_ROLE_PREFIX,  # not in the PoC
        }

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        # Lambda refuses a mapping from a queue whose visibility timeout is below the function
        # timeout; AWS recommends six times it so retries within one batch do not redeliver.
        return 6 * self.metadata_timeout_seconds

    @property
    def queue_age_alarm_seconds(self) -> int:
        """Age of the oldest message at which the queue's alarm fires: older than every retry can
        take, so the message is stuck (the Lambda's trigger disabled or broken), not retrying."""
        return self.max_receive_count * self.queue_visibility_timeout_seconds + QUEUE_AGE_ALARM_MARGIN_SECONDS

    # Environments: the deployed stack (values are pulumi Outputs there) and the local runner
    # (plain strings) build them with these, so they agree.
    def job_environment(self, *, bucket: Any, queue_url: Any) -> dict[str, Any]:
        """The harvester's environment, as the Batch job definition sets it (token excluded: a secret)."""
        return {
            JobEnv.BUCKET: bucket,
            JobEnv.QUEUE_URL: queue_url,
            JobEnv.SODA_DOMAIN: self.portal_domain,
            JobEnv.INVENTORY_ID: self.inventory_id,
            JobEnv.DATASET_LIMIT: str(self.dataset_limit),
            JobEnv.HARVEST_CONCURRENCY: str(self.harvest_concurrency),
            JobEnv.SHARD_COUNT: str(self.shards),
            # The job stops itself a margin before Batch's timeout, which Batch never retries.
            JobEnv.JOB_TIMEOUT: str(self.job_timeout_seconds),
        }

    def metadata_environment(self, *, bucket: Any, table: Any, topic_arn: Any) -> dict[str, Any]:
        return {
            LambdaEnv.BUCKET: bucket,
            LambdaEnv.TABLE_NAME: table,
            LambdaEnv.TOPIC_ARN: topic_arn,
            LambdaEnv.POWERTOOLS_SERVICE_NAME: Services.METADATA,
        }

    def criteria_environment(self, *, bucket: Any, table: Any) -> dict[str, Any]:
        return {
            LambdaEnv.BUCKET: bucket,
            LambdaEnv.TABLE_NAME: table,
            LambdaEnv.POWERTOOLS_SERVICE_NAME: Services.CRITERIA,
        }

    # Loading.
    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> PipelineConfig:
        """Build from camelCase keys (as in `Pulumi.<stack>.yaml`, without the project prefix)."""
        by_key = {config_key(f.name): f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(by_key))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(f'{PROJECT}:{k}' for k in unknown)}")
        kwargs = {}
        for key, raw in values.items():
            if raw is None:
                continue
            f = by_key[key]
            kwargs[f.name] = _coerce(key, raw, field_default(f))
        return cls(**kwargs)

    @classmethod
    def from_pulumi(cls) -> PipelineConfig:
        import pulumi

        config = pulumi.Config()
        values = {key: config.get(key) for key in config_keys()}
        # pulumi.Config only answers for a key it is asked about, so a misspelt key would be
        # ignored in silence and its setting left at the default: refuse it, as from_values does.
        unknown = sorted(_stack_keys() - set(config_keys()) - set(SECRET_KEYS))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(f'{PROJECT}:{k}' for k in unknown)}")
        return cls.from_values({k: v for k, v in values.items() if v is not None})

    @classmethod
    def from_stack_file(cls, stack: str = "dev", root: Path = ROOT) -> PipelineConfig:
        import yaml

        data = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
        prefix = f"{PROJECT}:"
        values = {k[len(prefix):]: v for k, v in (data.get("config") or {}).items()
                  if k.startswith(prefix) and k[len(prefix):] not in SECRET_KEYS}
        return cls.from_values(values)


def config_reference_markdown() -> str:
    """The README's configuration table, generated from the fields' `poc` and `doc` metadata."""
    rows = ["| Key | Default | PoC step | What it sets |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(PipelineConfig):
        default = field_default(f)
        shown = json.dumps(default) if isinstance(default, (bool, list)) else str(default)
        rows.append(f"| `{PROJECT}:{config_key(f.name)}` | `{shown}` | {f.metadata['poc']} | {f.metadata['doc']} |")
    rows.append(f"| `{PROJECT}:portalAppToken` (secret) | unset | 5 | Socrata app token; "
                "`pulumi config set --secret`; reaches the job through SSM, never as plain text |")
    return "\n".join(rows)


# Settings read separately as Pulumi secrets, never as plain values.
SECRET_KEYS = ("portalAppToken",)


def config_key(field_name: str) -> str:
    head, *rest = field_name.split("_")
    key = head + "".join(part.capitalize() for part in rest)
    return key.replace("Gib", "GiB").replace("Mib", "MiB").replace("Mb", "MB")


def _stack_keys() -> set[str]:
    """This project's keys in the stack's config. Pulumi has no public call that lists them: they
    are in the SDK's config map (set by the engine, or by the mocks) or in PULUMI_CONFIG."""
    from pulumi.runtime import config as runtime_config

    names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    prefix = f"{PROJECT}:"
    return {name[len(prefix):] for name in names if name.startswith(prefix)}


def config_keys() -> list[str]:
    return [config_key(f.name) for f in dataclasses.fields(PipelineConfig)]


def _coerce(key: str, raw: Any, default: Any) -> Any:
    """Pulumi hands config values over as strings; YAML may give native types."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise ValueError
        if isinstance(default, int):
            if isinstance(raw, bool):
                raise ValueError
            return int(str(raw), 10)
        if isinstance(default, list):
            value = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError
            return value
        return str(raw)
    except ValueError:
        kind = {bool: "boolean (true/false)", int: "whole number", list: "list of strings"}.get(
            type(default), "string")
        raise ConfigError(f"{PROJECT}:{key} must be a {kind} (got {raw!r})") from None
