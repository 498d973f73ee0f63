"""The job's settings, read from the environment (names in contract.JobEnv) and validated.

A missing or invalid value raises `SettingError` naming the variable; main.py exits with 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, TypeVar

from contract import JobDefaults, JobEnv, is_dataset_id, portal_problem

T = TypeVar("T")
MIB = 1024 * 1024


class SettingError(ValueError):
    """A missing or invalid environment variable; the message starts with its name."""


@dataclass(frozen=True)
class Settings:
    bucket: str
    queue_url: str
    domain: str = JobDefaults.SODA_DOMAIN
    app_token: str | None = None
    inventory_id: str = JobDefaults.INVENTORY_ID
    dataset_limit: int = JobDefaults.DATASET_LIMIT  # 0: every eligible dataset
    dataset_ids: tuple[str, ...] = ()  # non-empty: exactly these, instead of the inventory selection
    concurrency: int = JobDefaults.HARVEST_CONCURRENCY
    shard_count: int = JobDefaults.SHARD_COUNT
    shard_index: int = 0
    force: bool = False
    job_id: str = ""  # AWS_BATCH_JOB_ID: the same on every attempt of the job
    page_size: int = JobDefaults.PAGE_SIZE
    http_timeout: float = JobDefaults.HTTP_TIMEOUT
    http_retries: int = JobDefaults.HTTP_RETRIES
    retry_after_max: float = JobDefaults.RETRY_AFTER_MAX
    dataset_timeout: float = JobDefaults.DATASET_TIMEOUT
    part_size: int = JobDefaults.PART_SIZE_MIB * MIB
    job_timeout: int = 0  # seconds: the job definition's attempt timeout; 0: no job deadline


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingError(f"{name} is required")
    return value


def _parsed(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T],
            valid: Callable[[T], bool], expected: str) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise SettingError(f"{name} must be {expected} (got {raw!r})") from None
    if not valid(value):
        raise SettingError(f"{name} must be {expected} (got {raw!r})")
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise ValueError(raw)


def _dataset_ids(raw: str) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    bad = [i for i in ids if not is_dataset_id(i)]
    if bad:
        raise SettingError(f"{JobEnv.DATASET_IDS} holds ids that are not Socrata 4x4 ids: {', '.join(map(repr, bad))}")
    return ids


def log_level(env: Mapping[str, str]) -> str:
    """The logging level name in LOG_LEVEL (default INFO)."""
    level = env.get(JobEnv.LOG_LEVEL, "").strip().upper() or "INFO"
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingError(f"{JobEnv.LOG_LEVEL} must be DEBUG, INFO, WARNING, ERROR or CRITICAL (got {level!r})")
    return level


def load_settings(env: Mapping[str, str]) -> Settings:
    """Every setting from `env` (os.environ in the job); raises SettingError on the first problem."""
    bucket = _required(env, JobEnv.BUCKET)
    queue_url = _required(env, JobEnv.QUEUE_URL)
    domain = env.get(JobEnv.SODA_DOMAIN, "").strip() or JobDefaults.SODA_DOMAIN
    if problem := portal_problem(domain):
        raise SettingError(f"{JobEnv.SODA_DOMAIN} {problem} (got {domain!r})")
    inventory_id = env.get(JobEnv.INVENTORY_ID, "").strip() or JobDefaults.INVENTORY_ID
    if not is_dataset_id(inventory_id):
        raise SettingError(f"{JobEnv.INVENTORY_ID} must be a Socrata 4x4 id (got {inventory_id!r})")
    positive = lambda v: v >= 1  # noqa: E731
    shard_count = _parsed(env, JobEnv.SHARD_COUNT, JobDefaults.SHARD_COUNT, int, positive, "a whole number >= 1")
    shard_index = 0
    if shard_count == 1 and env.get(JobEnv.ARRAY_INDEX, "").strip():
        raise SettingError(f"{JobEnv.ARRAY_INDEX} is set (an array job) but {JobEnv.SHARD_COUNT} is 1: every "
                           f"child would harvest every dataset; set {JobEnv.SHARD_COUNT} to the array size")
    if shard_count > 1:
        if not env.get(JobEnv.ARRAY_INDEX, "").strip():
            raise SettingError(f"{JobEnv.ARRAY_INDEX} is required when {JobEnv.SHARD_COUNT} > 1 "
                               "(run the job as an array job of that size)")
        shard_index = _parsed(env, JobEnv.ARRAY_INDEX, 0, int, lambda v: 0 <= v < shard_count,
                              f"a whole number from 0 to {shard_count - 1} ({JobEnv.SHARD_COUNT}={shard_count})")
    part_mib = _parsed(env, JobEnv.PART_SIZE_MIB, JobDefaults.PART_SIZE_MIB, int, lambda v: 5 <= v <= 5120,
                       "a whole number of MiB from 5 to 5120 (S3 rejects smaller parts)")
    return Settings(
        bucket=bucket,
        queue_url=queue_url,
        domain=domain,
        app_token=env.get(JobEnv.SODA_APP_TOKEN, "").strip() or None,
        inventory_id=inventory_id,
        dataset_limit=_parsed(env, JobEnv.DATASET_LIMIT, JobDefaults.DATASET_LIMIT, int, lambda v: v >= 0,
                              "a whole number >= 0 (0: every eligible dataset)"),
        dataset_ids=_dataset_ids(env.get(JobEnv.DATASET_IDS, "")),
        concurrency=_parsed(env, JobEnv.HARVEST_CONCURRENCY, JobDefaults.HARVEST_CONCURRENCY, int,
                            lambda v: 1 <= v <= 64, "a whole number from 1 to 64"),
        shard_count=shard_count,
        shard_index=shard_index,
        force=_parsed(env, JobEnv.FORCE, False, _boolean, lambda v: True, "true or false"),
        job_id=env.get(JobEnv.JOB_ID, "").strip(),
        page_size=_parsed(env, JobEnv.PAGE_SIZE, JobDefaults.PAGE_SIZE, int, lambda v: 1 <= v <= 50000,
                          "a whole number from 1 to 50000 (the SODA 2.0 maximum)"),
        http_timeout=_parsed(env, JobEnv.HTTP_TIMEOUT, JobDefaults.HTTP_TIMEOUT, float, lambda v: 0 < v <= 600,
                             "seconds, above 0 and at most 600"),
        http_retries=_parsed(env, JobEnv.HTTP_RETRIES, JobDefaults.HTTP_RETRIES, int, lambda v: 0 <= v <= 20,
                             "a whole number from 0 to 20"),
        retry_after_max=_parsed(env, JobEnv.RETRY_AFTER_MAX, JobDefaults.RETRY_AFTER_MAX, float,
                                lambda v: 0 <= v <= 600, "seconds from 0 to 600"),
        dataset_timeout=_parsed(env, JobEnv.DATASET_TIMEOUT, JobDefaults.DATASET_TIMEOUT, float,
                                lambda v: v > 0, "seconds above 0"),
        part_size=part_mib * MIB,
        # Batch refuses an attempt timeout under 60 s; a smaller one here would leave the job no
        # time to harvest before its margin (container.deadline.job_margin).
        job_timeout=_parsed(env, JobEnv.JOB_TIMEOUT, 0, int, lambda v: v == 0 or v >= 60,
                            "a whole number of seconds: 0 (no job deadline) or 60 or more (AWS Batch's minimum)"),
    )
