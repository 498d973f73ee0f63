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


def split_domain(domain: str) -> tuple[str, str]:
    """`www.datos.gov.co` -> ("https://", "www.datos.gov.co"); a URL keeps its scheme, so
    `http://127.0.0.1:8081` reaches a local server (sodapy builds URLs as prefix + domain + path)."""
    for prefix in ("https://", "http://"):
        if domain.startswith(prefix):
            return prefix, domain[len(prefix):]
    return "https://", domain


def _portal_host(domain: str) -> tuple[str, str | None]:
    """SODA_DOMAIN without its scheme, split into (name, port or None)."""
    host = split_domain(domain)[1]
    name, colon, port = host.rpartition(":")
    return (name, port) if colon else (host, None)


def portal_problem(domain: str) -> str | None:
    """Why `domain` cannot be SODA_DOMAIN (None when it can): a host name, or an http:// or
    https:// URL with an optional port and no path, as the harvester builds its URLs on it."""
    name, port = _portal_host(domain)
    if (not name or any(c in name for c in " /:")
            or (port is not None and not (port.isdigit() and 0 < int(port) < 65536))):
        return "must be a host name, or an http:// or https:// URL without a path"
    return None


def portal_port(domain: str) -> int:
    """The TCP port the harvester connects to for a valid SODA_DOMAIN."""
    _, port = _portal_host(domain)
    if port is not None:
        return int(port)
    return 443 if split_domain(domain)[0] == "https://" else 80


# IAM resource patterns of those keys (`*` spans `/` in IAM, as in fnmatch): each role may touch
# only the kind of object it handles, so the harvester, which runs on internet data, cannot
# overwrite a quality report, nor the criteria Lambda a dataset.
DATASET_KEY_PATTERN = "*/*.csv"
CRITERIA_KEY_PATTERN = "*/criteria.json"


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
    # Set by AWS Batch itself: on each child of an array job, and on every job (the same id on
    # each attempt of a job or of a child, as `parent:index`).
    ARRAY_INDEX = "AWS_BATCH_JOB_ARRAY_INDEX"
    JOB_ID = "AWS_BATCH_JOB_ID"
    # Tuning knobs of the harvester (optional; defaults in JobDefaults).
    PAGE_SIZE = "PAGE_SIZE"  # rows per CSV page request
    HTTP_TIMEOUT = "HTTP_TIMEOUT"  # seconds to connect / wait for the next bytes
    HTTP_RETRIES = "HTTP_RETRIES"  # retries per portal request
    RETRY_AFTER_MAX = "RETRY_AFTER_MAX"  # cap, in seconds, on an honoured Retry-After
    DATASET_TIMEOUT = "DATASET_TIMEOUT"  # deadline, in seconds, for one dataset
    # The job definition's attempt timeout in seconds, set by the ingestion component from the same
    # config value (jobTimeoutSeconds): the job stops a margin before it, so it can exit 1 (Batch
    # retries) instead of being killed (not retried). Absent or 0: no job deadline (a job run by hand).
    JOB_TIMEOUT = "JOB_TIMEOUT"
    PART_SIZE_MIB = "PART_SIZE_MIB"  # S3 multipart part size (5 or more)
    LOG_LEVEL = "LOG_LEVEL"  # a logging level name (default INFO)


class JobExit:
    """The harvester's exit codes; the job definition's retry strategy depends on them."""

    OK = 0  # no dataset failed (each harvested, skipped, re-announced or rejected)
    DATASET_FAILED = 1  # some dataset failed: Batch retries, the rerun does only what is left
    BAD_SETTINGS = 2  # a missing or invalid setting: retrying cannot help


class JobDefaults:
    """Defaults of the harvester's settings when the environment leaves them out.

    The image does not ship components/, so the stack defaults the job shares with
    `PipelineConfig` are repeated here; tests/container assert they stay equal.
    """

    SODA_DOMAIN = "www.datos.gov.co"
    INVENTORY_ID = "uzcf-b9dh"
    DATASET_LIMIT = 100
    HARVEST_CONCURRENCY = 4
    SHARD_COUNT = 1
    PAGE_SIZE = 50000  # the SODA 2.0 maximum for $limit
    HTTP_TIMEOUT = 60.0
    HTTP_RETRIES = 5
    RETRY_AFTER_MAX = 60.0
    DATASET_TIMEOUT = 1800.0
    PART_SIZE_MIB = 8


class ObjectMetadata:
    """S3 user metadata (`x-amz-meta-*`, ASCII only) on a stored dataset `{ID}/{ID}.csv`: what is
    known when the upload starts."""

    SOURCE_UPDATED_AT = "source-updated-at"  # portal rowsUpdatedAt, epoch seconds
    HARVESTED_AT = "harvested-at"  # ISO 8601, UTC
    SOURCE_DOMAIN = "source-domain"
    HARVEST_JOB = "harvest-job"  # the Batch job id that stored it (none when run by hand)


class ObjectTags:
    """S3 object tags on a stored dataset: what is known only at the end.

    Both are put in one call once the dataset's SQS message was sent: `rows` (the count is known
    only after the last page, too late for object metadata) and `announced=true`. When the message
    cannot be sent, `rows` alone is put, so a rerun re-sends it without downloading.
    """

    ROWS = "rows"  # records stored, header excluded
    ANNOUNCED = "announced"
    TRUE = "true"


class LambdaEnv:
    """Environment variables of the two Lambdas (set by the processing/notification components)."""

    BUCKET = "BUCKET"
    TABLE_NAME = "TABLE_NAME"
    TOPIC_ARN = "TOPIC_ARN"
    POWERTOOLS_SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"


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


class Item:
    """Attribute names of a dataset's DynamoDB item besides the key (`Table`).

    The metadata Lambda writes the first group; the criteria Lambda adds the quality results.
    The PoC's own attributes (`OWNER`, `NAME`, `EMAIL`, `CATEGORY`) keep their upper-case names.
    """

    OWNER = "OWNER"
    NAME = "NAME"
    EMAIL = "EMAIL"
    CATEGORY = "CATEGORY"
    BUCKET = "bucket"
    KEY = "key"
    VERSION_ID = "version_id"  # "" when the bucket is not versioned
    SIZE = "size"  # bytes hashed
    ROWS = "rows"  # CSV records counted while hashing, header excluded
    SOURCE_UPDATED_AT = "source_updated_at"
    HARVESTED_AT = "harvested_at"
    PROCESSED_AT = "processed_at"
    # Set after the SNS notification was published: a redelivery publishes only when it is missing.
    NOTIFIED_AT = "notified_at"
    # Quality results (criteria Lambda).
    CRITERIA = "criteria"
    QUALITY_SCORE = "quality_score"
    ERROR_CODES = "error_codes"
    EVALUATED_AT = "evaluated_at"
