"""Settings from the environment: defaults, validation, and agreement with the stack config."""

from __future__ import annotations

import pytest

from components.config import PipelineConfig
from container.settings import MIB, SettingError, load_settings, log_level
from contract import JobDefaults, JobEnv

BASE = {JobEnv.BUCKET: "b", JobEnv.QUEUE_URL: "https://sqs/q"}


def test_defaults_are_the_pocs():
    settings = load_settings(BASE)
    assert (settings.domain, settings.inventory_id, settings.dataset_limit, settings.concurrency) == (
        "www.datos.gov.co", "uzcf-b9dh", 100, 4)
    assert settings.shard_count == 1 and settings.shard_index == 0 and not settings.force
    assert settings.dataset_ids == () and settings.app_token is None and settings.part_size == 8 * MIB
    assert settings.job_timeout == 0  # no job deadline unless the job definition sets one


def test_job_defaults_equal_the_stack_defaults():
    config = PipelineConfig()
    assert (JobDefaults.SODA_DOMAIN, JobDefaults.INVENTORY_ID, JobDefaults.DATASET_LIMIT,
            JobDefaults.HARVEST_CONCURRENCY, JobDefaults.SHARD_COUNT) == (
        config.portal_domain, config.inventory_id, config.dataset_limit, config.harvest_concurrency, config.shards)


def test_every_variable_is_read():
    settings = load_settings({**BASE, JobEnv.SODA_DOMAIN: "http://127.0.0.1:8081", JobEnv.SODA_APP_TOKEN: "t",
                              JobEnv.INVENTORY_ID: "abcd-1234", JobEnv.DATASET_LIMIT: "0",
                              JobEnv.DATASET_IDS: "gt2j-8ykr, jbjy-vk9h,gt2j-8ykr", JobEnv.HARVEST_CONCURRENCY: "8",
                              JobEnv.SHARD_COUNT: "4", JobEnv.ARRAY_INDEX: "3", JobEnv.FORCE: "true",
                              JobEnv.PAGE_SIZE: "1000", JobEnv.HTTP_TIMEOUT: "5", JobEnv.HTTP_RETRIES: "2",
                              JobEnv.RETRY_AFTER_MAX: "10", JobEnv.DATASET_TIMEOUT: "60", JobEnv.PART_SIZE_MIB: "16",
                              JobEnv.JOB_TIMEOUT: "300", JobEnv.JOB_ID: "4f2c-e1:3"})
    assert settings.domain == "http://127.0.0.1:8081" and settings.app_token == "t"
    assert settings.dataset_ids == ("gt2j-8ykr", "jbjy-vk9h") and settings.dataset_limit == 0
    assert (settings.shard_count, settings.shard_index, settings.force, settings.job_id) == (4, 3, True, "4f2c-e1:3")
    assert (settings.page_size, settings.http_timeout, settings.http_retries) == (1000, 5.0, 2)
    assert (settings.retry_after_max, settings.dataset_timeout, settings.part_size) == (10.0, 60.0, 16 * MIB)
    assert settings.job_timeout == 300


@pytest.mark.parametrize(("env", "name"), [
    ({JobEnv.QUEUE_URL: "q"}, JobEnv.BUCKET),
    ({JobEnv.BUCKET: "b"}, JobEnv.QUEUE_URL),
    ({**BASE, JobEnv.DATASET_LIMIT: "-1"}, JobEnv.DATASET_LIMIT),
    ({**BASE, JobEnv.DATASET_LIMIT: "many"}, JobEnv.DATASET_LIMIT),
    ({**BASE, JobEnv.HARVEST_CONCURRENCY: "0"}, JobEnv.HARVEST_CONCURRENCY),
    ({**BASE, JobEnv.DATASET_IDS: "gt2j-8ykr,8ffd-q6x9:0"}, JobEnv.DATASET_IDS),
    ({**BASE, JobEnv.DATASET_IDS: "../x"}, JobEnv.DATASET_IDS),
    ({**BASE, JobEnv.INVENTORY_ID: "inventory"}, JobEnv.INVENTORY_ID),
    ({**BASE, JobEnv.SODA_DOMAIN: "http://host/path/"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.SODA_DOMAIN: "ftp://127.0.0.1"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.SODA_DOMAIN: "HTTP://127.0.0.1:1"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.SODA_DOMAIN: "http://"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.SODA_DOMAIN: "www.datos.gov.co/resource"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.SODA_DOMAIN: "http://127.0.0.1:70000"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.SODA_DOMAIN: "127.0.0.1:"}, JobEnv.SODA_DOMAIN),
    ({**BASE, JobEnv.ARRAY_INDEX: "5"}, JobEnv.ARRAY_INDEX),
    ({**BASE, JobEnv.LOG_LEVEL: "verbose"}, JobEnv.LOG_LEVEL),
    ({**BASE, JobEnv.SHARD_COUNT: "3"}, JobEnv.ARRAY_INDEX),
    ({**BASE, JobEnv.SHARD_COUNT: "3", JobEnv.ARRAY_INDEX: "3"}, JobEnv.ARRAY_INDEX),
    ({**BASE, JobEnv.SHARD_COUNT: "0"}, JobEnv.SHARD_COUNT),
    ({**BASE, JobEnv.FORCE: "maybe"}, JobEnv.FORCE),
    ({**BASE, JobEnv.PAGE_SIZE: "50001"}, JobEnv.PAGE_SIZE),
    ({**BASE, JobEnv.PART_SIZE_MIB: "4"}, JobEnv.PART_SIZE_MIB),
    ({**BASE, JobEnv.HTTP_TIMEOUT: "0"}, JobEnv.HTTP_TIMEOUT),
    ({**BASE, JobEnv.JOB_TIMEOUT: "-1"}, JobEnv.JOB_TIMEOUT),
    ({**BASE, JobEnv.JOB_TIMEOUT: "30"}, JobEnv.JOB_TIMEOUT),  # under Batch's 60 s minimum
    ({**BASE, JobEnv.JOB_TIMEOUT: "5m"}, JobEnv.JOB_TIMEOUT),
])
def test_a_missing_or_invalid_setting_is_named(env, name):
    with pytest.raises(SettingError, match=f"^{name} "):
        log_level(env)
        load_settings(env)


@pytest.mark.parametrize("domain", ["www.datos.gov.co", "https://www.datos.gov.co", "http://127.0.0.1:8081",
                                    "localhost:8081"])
def test_a_host_or_an_http_url_is_a_domain(domain):
    assert load_settings({**BASE, JobEnv.SODA_DOMAIN: domain}).domain == domain


def test_the_log_level_is_a_level_name_in_any_case():
    assert log_level({}) == "INFO" and log_level({JobEnv.LOG_LEVEL: "warning"}) == "WARNING"


def test_job_timeout_0_means_no_job_deadline():
    assert load_settings({**BASE, JobEnv.JOB_TIMEOUT: "0"}).job_timeout == 0
