"""The settings the infrastructure program added to PipelineConfig, and the generated README table."""

from __future__ import annotations

import dataclasses

import pytest

from components.config import ConfigError, PipelineConfig, config_key, config_keys, config_reference_markdown


def test_dev_stack_file_sets_every_key_at_its_default():
    assert PipelineConfig.from_stack_file("dev") == PipelineConfig()


def test_reference_table_has_one_row_per_setting_plus_the_secret_token():
    table = config_reference_markdown().splitlines()
    assert len(table) == 2 + len(config_keys()) + 1
    for field in dataclasses.fields(PipelineConfig):
        (row,) = [line for line in table if f"`arti4207:{config_key(field.name)}`" in line]
        assert field.metadata["doc"] in row and f"| {field.metadata['poc']} |" in row
    assert "`arti4207:portalAppToken` (secret)" in table[-1]


@pytest.mark.parametrize("key, value, message", [
    ("powertoolsLayerVersion", "0", "arti4207:powertoolsLayerVersion must be between 1 and 1000"),
    ("imageRetentionCount", "0", "arti4207:imageRetentionCount must be between 1 and 1000"),
    ("abortMultipartDays", "400", "arti4207:abortMultipartDays must be between 1 and 365"),
    ("noncurrentVersionDays", "x", "arti4207:noncurrentVersionDays must be a whole number"),
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
    ("harvestSchedule", "every day", r"arti4207:harvestSchedule is malformed \(example: rate\(1 day\)\)"),
    ("harvestSchedule", "rate(1 days)", "arti4207:harvestSchedule is malformed"),
    ("harvestSchedule", "cron(0 5 * *)", "arti4207:harvestSchedule is malformed"),
    ("useSpot", "yes", r"arti4207:useSpot must be a boolean \(true/false\)"),
    ("lambdaRuntime", "python3.9", "arti4207:lambdaRuntime must be one of python3.11, python3.12"),
    ("logRetentionDays", "2", "arti4207:logRetentionDays must be one of 1, 3, 5"),
    ("bucketName", "Not_A_Bucket", "arti4207:bucketName is malformed"),
    ("inventoryId", "uzcf-b9dh:0", "arti4207:inventoryId is malformed"),
    ("subnetIds", '"subnet-1"', "arti4207:subnetIds must be a list of strings"),
    ("shards", "-1", "arti4207:shards must be between 1 and 10000"),
])
def test_invalid_values_name_the_key_and_the_allowed_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_values({key: value})


def test_unknown_keys_are_rejected_rather_than_ignored():
    with pytest.raises(ConfigError, match="unknown setting.*arti4207:batchsize"):
        PipelineConfig.from_values({"batchsize": "1"})


@pytest.mark.parametrize("schedule", ["rate(1 day)", "rate(6 hours)", "rate(30 minutes)",
                                      "cron(0 5 * * ? *)", ""])
def test_well_formed_schedules_are_accepted(schedule):
    assert PipelineConfig.from_values({"harvestSchedule": schedule}).harvest_schedule == schedule


def test_values_arrive_as_pulumi_strings_or_yaml_natives():
    config = PipelineConfig.from_values({"useSpot": "false", "assignPublicIp": False, "batchSize": "3",
                                         "maxVcpus": 4, "subnetIds": '["subnet-a", "subnet-b"]'})
    assert (config.use_spot, config.assign_public_ip, config.batch_size, config.max_vcpus) == (False, False, 3, 4)
    assert config.subnet_ids == ["subnet-a", "subnet-b"]


def test_derived_settings_follow_their_inputs():
    config = PipelineConfig.from_values({"metadataTimeoutSeconds": "100", "queueName": "Q",
                                         "criteriaFunctionName": "C"})
    assert config.queue_visibility_timeout_seconds == 600  # 6 x the function timeout
    assert (config.dead_letter_queue_name, config.criteria_dead_letter_queue_name) == ("Q-dlq", "C-dlq")


def test_the_readme_holds_the_generated_configuration_table():
    from components.config import ROOT

    assert config_reference_markdown() in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README's configuration table is stale: paste config_reference_markdown()'s output"


def test_the_pinned_layer_is_documented_for_the_powertools_the_tests_run():
    import re

    from components.config import ROOT

    pinned = re.search(r"^aws-lambda-powertools==(\S+)$", (ROOT / "requirements-dev.txt").read_text(), re.M)
    (layer,) = [f for f in dataclasses.fields(PipelineConfig) if f.name == "powertools_layer_version"]
    assert pinned and f"aws-lambda-powertools {pinned.group(1)}" in layer.metadata["doc"]
