"""The contract shared by the harvester job, the Lambdas, the components and the local runner.

Every name that crosses a process boundary (environment variables, S3 keys, message fields,
DynamoDB attributes) is defined here once. The module has no dependencies beyond the standard
library, so it ships both in the harvester image and in the Lambda package.
"""

from __future__ import annotations

import re

# A Socrata asset id ("four-by-four"): drafts (`abcd-1234:0`), paths and empty strings do not match.
DATASET_ID_PATTERN = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")


def is_dataset_id(value: object) -> bool:
    return isinstance(value, str) and DATASET_ID_PATTERN.fullmatch(value) is not None


def dataset_key(dataset_id: str) -> str:
    """S3 key of a stored dataset (the PoC's `{ID}/{ID}.csv`)."""
    if not is_dataset_id(dataset_id):
        raise ValueError(f"not a Socrata dataset id: {dataset_id!r}")
    return f"{dataset_id}/{dataset_id}.csv"


def criteria_key(dataset_id: str) -> str:
    """S3 key of a dataset's quality report, next to the data."""
    if not is_dataset_id(dataset_id):
        raise ValueError(f"not a Socrata dataset id: {dataset_id!r}")
    return f"{dataset_id}/criteria.json"


class JobEnv:
    """Environment variables of the harvester job (set by the Batch job definition)."""

    BUCKET = "BUCKET"
    QUEUE_URL = "QUEUE_URL"
    SODA_DOMAIN = "SODA_DOMAIN"
    SODA_APP_TOKEN = "SODA_APP_TOKEN"
    INVENTORY_ID = "INVENTORY_ID"
    DATASET_LIMIT = "DATASET_LIMIT"
    DATASET_IDS = "DATASET_IDS"
    HARVEST_CONCURRENCY = "HARVEST_CONCURRENCY"
    SHARD_COUNT = "SHARD_COUNT"
    FORCE = "FORCE"
    # Set by AWS Batch itself on each child of an array job.
    ARRAY_INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"


class LambdaEnv:
    """Environment variables of the two Lambdas (set by the processing/notification components)."""

    BUCKET = "BUCKET"
    TABLE_NAME = "TABLE_NAME"
    TOPIC_ARN = "TOPIC_ARN"
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    LOG_LEVEL = "POWERTOOLS_LOG_LEVEL"


class Table:
    """DynamoDB key schema: one item per (content hash, dataset).

    `HASH` is the PoC's partition key (SHA-256 of the stored object). Two datasets with the same
    bytes share a partition but keep one item each thanks to the sort key `ID`.
    """

    PARTITION_KEY = "HASH"
    SORT_KEY = "ID"


class Services:
    """Powertools service names, also used as the local runner's labels."""

    HARVESTER = "harvester"
    METADATA = "metadata"
    CRITERIA = "criteria"
