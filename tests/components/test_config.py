"""The settings the infrastructure program added to PipelineConfig, and the generated README table."""

from __future__ import annotations

import dataclasses
import re

import pytest

from components.config import ConfigError, PipelineConfig, config_key, config_keys, config_reference_markdown


def test_dev_stack_file_sets_every_key_at_its_default():
    assert PipelineConfig.from_stack_file("dev") == PipelineConfig()


def test_dev_stack_file_lists_every_key():
    # The repository keeps every setting in Pulumi.dev.yaml, so a new key must be added there too.
    import yaml

    from components.config import ROOT

    listed = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    assert sorted(k.split(":", 1)[1] for k in listed if k.startswith("arti4207:")) == sorted(config_keys())


def test_reference_table_has_one_row_per_setting_plus_the_secret_token():
    table = config_reference_markdown().splitlines()
    assert len(table) == 2 + len(config_keys()) + 1
    for field in dataclasses.fields(PipelineConfig):
        (row,) = [line for line in table if f"`arti4207:{config_key(field.name)}`" in line]
        assert field.metadata["doc"] in row and f"| {field.metadata['poc']} |" in row
    assert "`arti4207:portalAppToken` (secret)" in table[-1]


@pytest.mark.parametrize("key, value, message", [
    ("powertoolsLayerVersion", "-1", "arti4207:powertoolsLayerVersion must be between 0 and 1000"),
    ("powertoolsVersion", "3.37", "arti4207:powertoolsVersion is malformed"),
    ("imageRetentionCount", "0", "arti4207:imageRetentionCount must be between 1 and 1000"),
    ("abortMultipartDays", "400", "arti4207:abortMultipartDays must be between 1 and 365"),
    ("noncurrentVersionDays", "x", "arti4207:noncurrentVersionDays must be a whole number"),
    ("runnableTimeLimitSeconds", "599", "arti4207:runnableTimeLimitSeconds must be between 600 and 86400"),
    ("runnableTimeLimitSeconds", "86401", "arti4207:runnableTimeLimitSeconds must be between 600 and 86400"),
])
def test_added_settings_reject_values_outside_their_range(key, value, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_values({key: value})


@pytest.mark.parametrize("key, value, message", [
    ("ephemeralStorageGiB", "20", "arti4207:ephemeralStorageGiB must be between 21 and 200 \\(got 20\\)"),
    ("ephemeralStorageGiB", "201", "arti4207:ephemeralStorageGiB must be between 21 and 200"),
    ("maxVcpus", "0", "arti4207:maxVcpus must be between 1 and 256"),
    ("batchSize", "0", "arti4207:batchSize must be between 1 and 10"),
    ("batchSize", "11", "arti4207:batchSize must be between 1 and 10"),
    ("harvestSchedule", "every day", r"arti4207:harvestSchedule is malformed \(example: rate\(1 day\)"),
    ("harvestSchedule", "rate(1 days)", "arti4207:harvestSchedule is malformed"),
    ("harvestSchedule", "cron(0 5 * *)", "arti4207:harvestSchedule is malformed"),
    # AWS's cron: one of the two day fields is ?, the Unix habit fails only when the schedule is created.
    ("harvestSchedule", "cron(0 5 * * * *)", "arti4207:harvestSchedule must have \\? in exactly one of the day"),
    ("harvestSchedule", "cron(0 5 ? * ? *)", "arti4207:harvestSchedule must have \\? in exactly one of the day"),
    ("harvestSchedule", "cron(? 5 * * ? *)", "arti4207:harvestSchedule may use \\? only as the whole day"),
    ("harvestSchedule", "cron(0 5 ?,1 * ? *)", "arti4207:harvestSchedule may use \\? only as the whole day"),
    ("harvestSchedule", "cron(60 5 * * ? *)", "has 60 in the minutes field of cron \\(allowed: 0-59\\)"),
    ("harvestSchedule", "cron(0 5 32 * ? *)", "has 32 in the day-of-month field of cron \\(allowed: 1-31\\)"),
    ("harvestSchedule", "cron(0 5 ? * 8 *)", "has 8 in the day-of-week field of cron \\(allowed: 1-7\\)"),
    ("harvestSchedule", "cron(0 5 ? * 6#6 *)", "has #6 in the day-of-week field of cron \\(allowed: 1-5\\)"),
    ("harvestSchedule", "cron(0/0 5 * * ? *)", "has /0 in the minutes field of cron"),
    ("harvestSchedule", "at(2030-13-45T25:61:61)", "arti4207:harvestSchedule has no such date and time"),
    ("harvestSchedule", "cron(0 5 * * ? ;)", "arti4207:harvestSchedule has a cron field with characters"),
    ("useSpot", "yes", r"arti4207:useSpot must be a boolean \(true/false\)"),
    ("lambdaRuntime", "python3.9", "arti4207:lambdaRuntime must be one of python3.11, python3.12"),
    ("logRetentionDays", "2", "arti4207:logRetentionDays must be one of 1, 3, 5"),
    ("bucketName", "Not_A_Bucket", "arti4207:bucketName is malformed"),
    # S3's other rules: adjacent periods, an IP address, reserved prefixes and suffixes.
    ("bucketName", "arti4207..poc", "arti4207:bucketName is malformed"),
    ("bucketName", "arti4207.-poc", "arti4207:bucketName is malformed"),
    ("bucketName", "192.168.10.20", "arti4207:bucketName is malformed"),
    ("bucketName", "xn--arti4207", "arti4207:bucketName is malformed"),
    ("bucketName", "arti4207-s3alias", "arti4207:bucketName is malformed"),
    ("repositoryName", "a", "arti4207:repositoryName is malformed"),  # ECR: 2-256 characters
    ("repositoryName", "a" * 257, "arti4207:repositoryName is malformed"),
    ("jobQueueName", "_ARTI4207-Queue", "arti4207:jobQueueName must be 1-128 characters .* starting with"),
    ("jobDefinitionName", "-ARTI4207-Job", "arti4207:jobDefinitionName must be 1-128 characters .* starting with"),
    ("inventoryId", "uzcf-b9dh:0", "arti4207:inventoryId is malformed"),
    ("subnetIds", '"subnet-1"', "arti4207:subnetIds must be a list of strings"),
    ("shards", "-1", "arti4207:shards must be between 1 and 10000"),
])
def test_invalid_values_name_the_key_and_the_allowed_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_values({key: value})


@pytest.mark.parametrize("name", ["arti4207--repo", "arti4207__repo", "equipo/arti4207-repo", "ab"])
def test_repository_names_ecr_takes_are_accepted(name):
    assert PipelineConfig.from_values({"repositoryName": name}).repository_name == name


@pytest.mark.parametrize("values, message", [
    # SQS answers a second CreateQueue of one name with the first queue: two resources, one DLQ.
    ({"topicName": "ARTI4207-Lambda-Criterio"}, "arti4207:topicName .*arti4207:criteriaFunctionName give two queues "
                                                "one name, 'ARTI4207-Lambda-Criterio-dlq'"),
    ({"queueName": "ARTI4207-topico"}, "give two queues one name, 'ARTI4207-topico-dlq'"),
    ({"criteriaFunctionName": "ARTI4207-Lambda"}, "give two functions one name, 'ARTI4207-Lambda'"),
    ({"alertTopicName": "ARTI4207-topico"}, "give two topics one name, 'ARTI4207-topico'"),
    ({"alertEmails": '["ops@example.org", "ops@example.org"]'}, "arti4207:alertEmails lists an address twice"),
])
def test_two_settings_may_not_name_one_resource(values, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_values(values)


def test_unknown_keys_are_rejected_rather_than_ignored():
    with pytest.raises(ConfigError, match="unknown setting.*arti4207:batchsize"):
        PipelineConfig.from_values({"batchsize": "1"})


@pytest.mark.parametrize("schedule", ["rate(1 day)", "rate(6 hours)", "rate(30 minutes)", "cron(0 5 * * ? *)",
                                      "cron(0/15 6-18 ? * MON-FRI *)", "cron(0 5 L * ? 2027)", "cron(0 5 ? * 6#3 *)",
                                      "cron(0 5 15W * ? *)", "cron(0 5 ? * 6L *)", "cron(0 5 1,15 JAN-JUN ? *)",
                                      "at(2030-01-01T05:00:00)", ""])
def test_well_formed_schedules_are_accepted(schedule):
    assert PipelineConfig.from_values({"harvestSchedule": schedule}).harvest_schedule == schedule


def test_values_arrive_as_pulumi_strings_or_yaml_natives():
    config = PipelineConfig.from_values({"useSpot": "false", "assignPublicIp": False, "batchSize": "3",
                                         "maxVcpus": 4, "subnetIds": '["subnet-0aaa1111", "subnet-0bbb2222"]'})
    assert (config.use_spot, config.assign_public_ip, config.batch_size, config.max_vcpus) == (False, False, 3, 4)
    assert config.subnet_ids == ["subnet-0aaa1111", "subnet-0bbb2222"]


def test_derived_settings_follow_their_inputs():
    config = PipelineConfig.from_values({"metadataTimeoutSeconds": "100", "queueName": "Q",
                                         "criteriaFunctionName": "C"})
    assert config.queue_visibility_timeout_seconds == 600  # 6 x the function timeout
    assert (config.dead_letter_queue_name, config.criteria_dead_letter_queue_name) == ("Q-dlq", "C-dlq")


def test_the_readme_holds_the_generated_configuration_table():
    from components.config import ROOT

    assert config_reference_markdown() in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README's configuration table is stale: paste config_reference_markdown()'s output"


def test_the_lambdas_run_the_powertools_release_the_tests_run():
    import re

    from components.config import ROOT

    pinned = re.search(r"^aws-lambda-powertools==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    assert pinned and PipelineConfig().powertools_version == pinned.group(1)
    assert PipelineConfig.from_stack_file("dev").powertools_layer_version == 0  # looked up, not guessed


# --- Fargate vCPU / memory: validated as a pair ------------------------------------------

@pytest.mark.parametrize("vcpu, memory, allowed", [
    ("2", "2048", "4096-16384 in steps of 1024"),
    ("1", "2500", "2048-8192 in steps of 1024"),
    ("0.25", "4096", "one of 512, 1024, 2048"),
    ("16", "2048", "32768-122880 in steps of 8192"),
    ("8", "20000", "16384-61440 in steps of 4096"),
    ("0.5", "512", "1024-4096 in steps of 1024"),
    ("4", "31744", "8192-30720 in steps of 1024"),
])
def test_fargate_rejects_a_memory_the_vcpu_cannot_have(vcpu, memory, allowed):
    message = (f"arti4207:jobMemoryMiB must be {allowed} when arti4207:jobVcpu is {vcpu} "
               f"\\(Fargate vCPU/memory combinations\\) \\(got {memory}\\)")
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_values({"jobVcpu": vcpu, "jobMemoryMiB": memory, "maxVcpus": "16"})


@pytest.mark.parametrize("vcpu, memory", [
    ("0.25", 512), ("0.25", 1024), ("0.25", 2048), ("0.5", 1024), ("0.5", 4096), ("1", 2048), ("1", 8192),
    ("2", 4096), ("2", 16384), ("4", 8192), ("4", 30720), ("8", 16384), ("8", 61440), ("16", 32768),
    ("16", 122880),
])
def test_fargate_accepts_every_edge_of_its_table(vcpu, memory):
    config = PipelineConfig.from_values({"jobVcpu": vcpu, "jobMemoryMiB": str(memory), "maxVcpus": "16"})
    assert (config.job_vcpu, config.job_memory_mib) == (vcpu, memory)


def test_a_job_larger_than_the_compute_environment_is_rejected():
    # Batch would leave it RUNNABLE for ever: no task of 2 vCPUs fits in a 1-vCPU environment.
    with pytest.raises(ConfigError, match=r"arti4207:jobVcpu must be at most arti4207:maxVcpus \(1\).*\(got 2\)"):
        PipelineConfig.from_values({"jobVcpu": "2", "jobMemoryMiB": "4096"})
    assert PipelineConfig.from_values({"jobVcpu": "2", "jobMemoryMiB": "4096", "maxVcpus": "2"}).max_vcpus == 2


# --- Queues: retention ----------------------------------------------------------------------

def test_queue_retention_is_a_setting_within_what_sqs_allows():
    config = PipelineConfig.from_values({"messageRetentionSeconds": "7200", "deadLetterRetentionSeconds": "7200"})
    assert (config.message_retention_seconds, config.dead_letter_retention_seconds) == (7200, 7200)
    with pytest.raises(ConfigError, match="arti4207:messageRetentionSeconds must be between 60 and 1209600"):
        PipelineConfig.from_values({"messageRetentionSeconds": "59"})


def test_a_dead_letter_queue_must_keep_messages_at_least_as_long_as_its_queue():
    # SQS expires a dead letter by the time it was first sent, not by when it reached the DLQ.
    with pytest.raises(ConfigError, match="arti4207:deadLetterRetentionSeconds must be at least "
                                          r"arti4207:messageRetentionSeconds \(345600\).*\(got 86400\)"):
        PipelineConfig.from_values({"deadLetterRetentionSeconds": "86400"})


@pytest.mark.parametrize("values, least", [
    ({"messageRetentionSeconds": "600"}, 5 * 720 + 900),  # shorter than the visibility timeout
    ({"maxReceiveCount": "1000"}, 1000 * 720 + 900),  # the retries outlast 4 days
    ({"messageRetentionSeconds": "4500"}, 4500),  # exactly the alarm's threshold: no time to fire
    ({"metadataTimeoutSeconds": "900", "messageRetentionSeconds": "3600", "deadLetterRetentionSeconds": "3600"},
     5 * 5400 + 900),
])
def test_a_failing_message_must_reach_the_dlq_and_alarm_before_the_queue_expires_it(values, least):
    # SQS deletes an expired message without dead-lettering it: the retries and the age alarm
    # must fit in the retention.
    with pytest.raises(ConfigError, match=f"^arti4207:messageRetentionSeconds must be more than {least} s: "
                                          r"arti4207:maxReceiveCount \(\d+\) receives of \d+ s each"):
        PipelineConfig.from_values(values)


def test_the_queue_age_alarm_sits_just_above_what_the_retries_take():
    config = PipelineConfig.from_values({"maxReceiveCount": "3", "metadataTimeoutSeconds": "60",
                                         "messageRetentionSeconds": "2000"})
    assert config.queue_age_alarm_seconds == 3 * 6 * 60 + 900 < config.message_retention_seconds


def test_alert_emails_are_a_list_of_addresses():
    assert PipelineConfig.from_values({"alertEmails": '["ops@example.org"]'}).alert_emails == ["ops@example.org"]
    with pytest.raises(ConfigError, match=r"^arti4207:alertEmails must be email addresses \('ops' is not\)"):
        PipelineConfig.from_values({"alertEmails": ["ops@example.org", "ops"]})


# --- The portal: the job's rule, and the port its security group lets out ------------------

@pytest.mark.parametrize("domain", ["www.datos.gov.co", "https://www.datos.gov.co", "https://x.example:443",
                                    "datos.example:443"])
def test_a_portal_the_job_can_reach_is_accepted(domain):
    assert PipelineConfig.from_values({"portalDomain": domain}).portal_domain == domain


@pytest.mark.parametrize("domain, message", [
    ("https://www.datos.gov.co/resource", "must be a host name, or an http:// or https:// URL without a path"),
    ("ftp://x.example", "must be a host name, or an http:// or https:// URL without a path"),
    ("x.example:99999", "must be a host name, or an http:// or https:// URL without a path"),
    ("http://x.example", r"must be reached on port 443 \(the job's security group allows HTTPS out only\)"),
    ("https://x.example:8443", "must be reached on port 443"),
])
def test_a_portal_the_job_would_refuse_or_never_reach_is_rejected(domain, message):
    with pytest.raises(ConfigError, match=f"arti4207:portalDomain {message}"):
        PipelineConfig.from_values({"portalDomain": domain})


# --- Names: each service's own rule -------------------------------------------------------

CHARS = "A-Za-z0-9_-"
COMPUTE_RULE = f"1-101 characters of {CHARS}, starting with one of A-Za-z0-9"


def short(value):
    """A test id: long generated names by their length."""
    return f"{value[0]}x{len(value)}" if isinstance(value, str) and len(value) > 24 and len(set(value)) == 1 else None


@pytest.mark.parametrize("key, value, rule", [
    ("queueName", "ARTI4207.SQS", f"1-76 characters of {CHARS}"),
    ("queueName", "Q" * 77, f"1-76 characters of {CHARS}"),  # its DLQ, Q...Q-dlq, would be 81
    ("topicName", "ARTI4207.topico", f"1-76 characters of {CHARS}"),
    ("topicName", "T" * 77, f"1-76 characters of {CHARS}"),  # its DLQ would be 81
    ("alertTopicName", "T" * 257, f"1-256 characters of {CHARS}"),
    ("metadataFunctionName", "ARTI4207.Lambda", f"1-64 characters of {CHARS}"),
    ("metadataFunctionName", "L" * 65, f"1-64 characters of {CHARS}"),
    ("criteriaFunctionName", "C" * 65, f"1-64 characters of {CHARS}"),
    ("jobQueueName", "ARTI4207.Queue", f"1-128 characters of {CHARS}, starting with one of A-Za-z0-9"),
    ("jobQueueName", "J" * 129, f"1-128 characters of {CHARS}, starting with one of A-Za-z0-9"),
    ("jobDefinitionName", "ARTI4207.Job", f"1-128 characters of {CHARS}, starting with one of A-Za-z0-9"),
    ("tableName", "AB", "3-255 characters of A-Za-z0-9_.-"),
    ("tableName", "ARTI4207 Dynamo", "3-255 characters of A-Za-z0-9_.-"),
    ("tableName", "D" * 256, "3-255 characters of A-Za-z0-9_.-"),
    ("computeEnvironmentName", "-Fargate", COMPUTE_RULE),
    ("computeEnvironmentName", "ARTI4207.Fargate", COMPUTE_RULE),
    ("computeEnvironmentName", "F" * 102, COMPUTE_RULE),
    ("batchRoleName", "R" * 33, "1-32 characters of A-Za-z0-9_+=,.@-"),
    ("batchRoleName", "ARTI4207 ECS", "1-32 characters of A-Za-z0-9_+=,.@-"),
    ("metadataRoleName", "R" * 38, "1-37 characters of A-Za-z0-9_+=,.@-"),
], ids=short)
def test_names_follow_their_services_rule_and_the_error_names_key_and_rule(key, value, rule):
    with pytest.raises(ConfigError, match=f"^arti4207:{key} must be {re.escape(rule)} \\(.+\\) \\(got '"):
        PipelineConfig.from_values({key: value})


@pytest.mark.parametrize("key, value", [
    ("queueName", "Q" * 76), ("topicName", "T" * 76), ("alertTopicName", "T" * 256),
    ("metadataFunctionName", "L" * 64),
    ("criteriaFunctionName", "C" * 64), ("jobQueueName", "J" * 128), ("jobDefinitionName", "J" * 128),
    ("tableName", "ARTI4207.Dynamo"), ("tableName", "D" * 255), ("computeEnvironmentName", "F" * 101),
    ("batchRoleName", "R" * 32), ("metadataRoleName", "M@x=1,2.3+" + "R" * 27),
], ids=short)
def test_names_at_the_limit_of_their_services_rule_are_accepted(key, value):
    config = PipelineConfig.from_values({key: value})
    assert getattr(config, {config_key(f.name): f.name for f in dataclasses.fields(PipelineConfig)}[key]) == value


def test_a_dead_letter_queue_name_sqs_would_refuse_names_the_key_it_comes_from(monkeypatch):
    # The field rules keep both DLQ names within SQS's 80 today; a longer suffix shows the check.
    monkeypatch.setattr("components.config.DLQ_SUFFIX", "-" + "d" * 20)
    with pytest.raises(ConfigError, match=r"^arti4207:criteriaFunctionName gives the dead-letter queue name "
                                          r"'C{60}-d{20}', which must be 1-80 characters of A-Za-z0-9_- "
                                          r"\(SQS queue name\) \(got 'C{60}'\)$"):
        PipelineConfig.from_values({"criteriaFunctionName": "C" * 60})


def test_every_dead_letter_queue_name_fits_sqs_at_the_longest_allowed_names():
    config = PipelineConfig.from_values({"queueName": "Q" * 76, "criteriaFunctionName": "C" * 64})
    assert len(config.dead_letter_queue_name) == 80 and len(config.criteria_dead_letter_queue_name) == 68


# --- PoC names of the compute environment and the roles -------------------------------------

def test_the_poc_names_are_the_defaults():
    config = PipelineConfig()
    assert config.compute_environment_name == "ARTI4207-Fargate"  # PoC step 6
    assert (config.batch_role_name, config.metadata_role_name) == ("ARTI4207-ECS", "ARTI4207-Lambda-Metadata")
    assert config.compute_environment_name_prefix == "ARTI4207-Fargate-"
    assert config.role_name_prefixes == {
        "execution": "ARTI4207-ECS-exec-",
        "job": "ARTI4207-ECS-job-",
        "metadata": "ARTI4207-Lambda-Metadata-",
        "criteria": "ARTI4207-Lambda-Criterio-",
        "scheduler": "ARTI4207-Scheduler-",
    }


@pytest.mark.parametrize("values", [
    {},
    {"batchRoleName": "R" * 32, "metadataRoleName": "M" * 37, "criteriaFunctionName": "C" * 64},
])
def test_role_name_prefixes_fit_iam_at_any_allowed_setting(values):
    config = PipelineConfig.from_values(values)
    # IAM role names are 1-64 characters; the provider adds a 26-character unique suffix to a prefix.
    assert all(len(prefix) <= 64 - 26 for prefix in config.role_name_prefixes.values())
    assert all(re.fullmatch(r"[\w+=,.@-]+", prefix) for prefix in config.role_name_prefixes.values())


def test_a_long_criteria_function_name_is_cut_to_fit_its_role_prefix():
    config = PipelineConfig.from_values({"criteriaFunctionName": "C" * 64})
    assert config.role_name_prefixes["criteria"] == "C" * 37 + "-"


# --- The job's network: what Batch on Fargate can use ---------------------------------------

def test_a_task_without_a_public_ip_needs_subnets_of_its_own():
    # The default VPC's default subnets route to an internet gateway and have no NAT gateway:
    # a Fargate task there without a public IP cannot pull its image, read its secret or reach
    # the portal, so every job would fail before it starts (Batch's Fargate compute environments).
    with pytest.raises(ConfigError, match=r"^arti4207:assignPublicIp must be true when arti4207:subnetIds is "
                                          r"empty.*\(got False\)"):
        PipelineConfig.from_values({"assignPublicIp": "false"})
    config = PipelineConfig.from_values({"assignPublicIp": "false", "subnetIds": ["subnet-0aaa1111"]})
    assert (config.assign_public_ip, config.subnet_ids) == (False, ["subnet-0aaa1111"])


@pytest.mark.parametrize("subnets, message", [
    (["subnet-1"], r"must be subnet ids \(subnet- and 8 or 17 hex digits\): 'subnet-1' is not"),
    (["subnet-0aaa1111", "sg-0aaa1111"], r"must be subnet ids .*: 'sg-0aaa1111' is not"),
    ([f"subnet-{i:08x}" for i in range(17)], r"may list at most 16 subnets \(Batch on Fargate; 17 given\)"),
])
def test_subnets_batch_on_fargate_would_refuse_are_rejected(subnets, message):
    with pytest.raises(ConfigError, match=f"^arti4207:subnetIds {message}"):
        PipelineConfig.from_values({"subnetIds": subnets})


def test_subnet_ids_of_both_lengths_and_up_to_16_are_accepted():
    subnets = ["subnet-0123456789abcdef0", *(f"subnet-{i:08x}" for i in range(15))]
    assert PipelineConfig.from_values({"subnetIds": subnets}).subnet_ids == subnets
