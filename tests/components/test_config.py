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
