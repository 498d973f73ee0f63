"""The job's work: select the datasets, then for each one (a bounded pool at a time) decide
skip / re-announce / harvest, store it and announce it. One dataset's failure never stops the
others; every outcome ends in the Summary.

Change detection ("nothing lost"): the object's metadata records the portal's rowsUpdatedAt;
once the SQS message is sent, one PutObjectTagging records the records stored (`rows`) and
`announced=true`; when the message cannot be sent, `rows` alone is tagged. A rerun skips a
dataset when rowsUpdatedAt and both tags match, re-sends the message (no download) when `rows`
is there but not `announced`, and harvests otherwise: an object left untagged (the job killed
between storing and tagging it) is harvested again. FORCE harvests every dataset again, except,
on a Batch retry, those an earlier attempt of the same job already stored (the object records
the job id, which Batch keeps for every attempt) and the portal has not updated since: a forced
job retried after a Spot reclaim does only what is left, as an unforced one does.

The job's deadline (`container.deadline`: JOB_TIMEOUT less a margin, or now on SIGTERM) bounds
every dataset's own: at it, the running datasets stop (their uploads aborted), no other one is
started, and each ends as a failed line saying so; the job exits 1 and Batch's retry harvests
what is left.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import Future
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any, Callable, Iterator, TypeVar

import requests
from botocore.exceptions import BotoCoreError, ClientError

from contract import JobExit, ObjectMetadata, ObjectTags, dataset_key
from container.csv_pages import InvalidPage, copy_page
from container.deadline import POLL, STOP_GRACE, Deadline, DeadlineExceeded, job_deadline
from container.prefetch import prefetched
from container.portal_client import PortalClient, PortalError, hang_up
from container.selection import INVENTORY_PAGE, Rejected, in_shard, inventory_query, select_entries
from container.settings import Settings
from container.source import (InventoryEntry, SourceMetadata, build_message, entry_from_row,
                              entry_from_view, metadata_from_view)
from container.upload import StoredObject, StreamingUpload, put_tags

T = TypeVar("T")
WORKER_PREFIX = "dataset_"  # the names of harvest_all's worker threads
logger = logging.getLogger("harvester")

HARVESTED, SKIPPED, REANNOUNCED, FAILED, REJECTED = "harvested", "skipped", "re-announced", "failed", "rejected"
# Why a dataset is skipped (or only re-announced): the reason on its summary line.
UNCHANGED = "unchanged"
EARLIER_ATTEMPT = "stored by an earlier attempt of this job"
STATUSES = (HARVESTED, SKIPPED, REANNOUNCED, FAILED, REJECTED)
# A harvested dataset's note when the portal's metadata has no rowsUpdatedAt: a rerun cannot tell
# whether it changed, so it harvests (and announces) it again each time.
NO_SOURCE_VERSION = "the portal gives no rowsUpdatedAt: harvested again on every run"
# Bytes per read from the portal: 1 MiB beat 256 KiB, 512 KiB and 2-4 MiB on the 20 MB benchmark
# (fewer trips through urllib3, the read-ahead queue and the checks; see docs/harvester.md).
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    id: str
    status: str
    name: str = ""
    reason: str = ""
    rows: int | None = None
    size: int | None = None
    version_id: str | None = None
    seconds: float = 0.0


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    shard_index: int = 0
    shard_count: int = 1
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {status: sum(o.status == status for o in self.outcomes) for status in STATUSES}

    @property
    def exit_code(self) -> int:
        return JobExit.DATASET_FAILED if any(o.status == FAILED for o in self.outcomes) else JobExit.OK

    def to_json(self) -> str:
        return json.dumps({"summary": {
            "counts": self.counts(), "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
            "shard": {"index": self.shard_index, "count": self.shard_count},
            "datasets": [asdict(o) for o in self.outcomes],
        }}, ensure_ascii=False, separators=(",", ":"))

    def to_lines(self) -> list[str]:
        counts = self.counts()
        lines = [f"harvest summary (shard {self.shard_index + 1}/{self.shard_count}, {self.seconds:.1f} s): "
                 + ", ".join(f"{counts[s]} {s}" for s in STATUSES)]
        lines += [f"  {o.status:<12} {o.id:<10} {o.rows if o.rows is not None else '':>10} "
                  f"{o.size if o.size is not None else '':>12}  {o.reason or o.name}" for o in self.outcomes]
        return lines


def utc_now() -> str:
    # Milliseconds: tells two harvests of one dataset apart in the item, the object metadata and the logs.
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- Selection ----------------------------------------------------------------------------


def _inventory_rows(portal: PortalClient, settings: Settings, job: Deadline,
                    ids: tuple[str, ...] = ()) -> Iterator[dict]:
    offset = 0
    while True:
        if job.passed():  # the whole portal's inventory is tens of pages: SIGTERM must not wait for them
            raise job.exceeded("while reading the inventory")
        page = portal.inventory_page(settings.inventory_id, **inventory_query(offset, INVENTORY_PAGE, ids))
        yield from page
        if len(page) < INVENTORY_PAGE:
            return
        offset += INVENTORY_PAGE


def select(portal: PortalClient, settings: Settings, job: Deadline) -> tuple[list[InventoryEntry], list[Rejected]]:
    """The datasets selected (every shard's: `in_shard` keeps this task's) and the inventory rows
    rejected."""
    if settings.dataset_ids:
        found = {}
        for row in _inventory_rows(portal, settings, job, settings.dataset_ids):
            if row.get("uid") in settings.dataset_ids:
                found[row["uid"]] = entry_from_row(row)
        # An id missing from the inventory is still harvested; its fields come from /api/views.
        entries = [found.get(i) or InventoryEntry(id=i, missing=("inventory row",)) for i in settings.dataset_ids]
        rejected: list[Rejected] = []
    else:
        entries, rejected = select_entries(_inventory_rows(portal, settings, job), settings.dataset_limit)
    return entries, rejected


# --- One dataset --------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredState:
    """What S3 holds for a dataset: None when nothing."""

    version_id: str | None
    size: int
    rows: int | None
    source_updated_at: int | None
    harvested_at: str
    announced: bool
    harvest_job: str = ""


def stored_state(s3: Any, bucket: str, key: str) -> StoredState | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    metadata = head.get("Metadata") or {}
    response = s3.get_object_tagging(Bucket=bucket, Key=key, **({"VersionId": head["VersionId"]}
                                                                 if head.get("VersionId") else {}))
    tags = {t["Key"]: t["Value"] for t in response.get("TagSet", [])}

    def number(value: str | None) -> int | None:
        return int(value) if value and value.isdigit() else None

    return StoredState(head.get("VersionId"), head["ContentLength"], number(tags.get(ObjectTags.ROWS)),
                       number(metadata.get(ObjectMetadata.SOURCE_UPDATED_AT)),
                       metadata.get(ObjectMetadata.HARVESTED_AT, ""), tags.get(ObjectTags.ANNOUNCED) == ObjectTags.TRUE,
                       metadata.get(ObjectMetadata.HARVEST_JOB, ""))


def store_dataset(portal: PortalClient, s3: Any, settings: Settings, dataset_id: str,
                  source: SourceMetadata, harvested_at: str, deadline: Deadline) -> tuple[StoredObject, int]:
    """Streams every page of the dataset into `{ID}/{ID}.csv`: (object, rows).

    The next page is asked for once the current one has delivered half a page of records, so
    the portal prepares it while this one streams (Socrata takes a while to start a large page).
    A dataset whose last page holds half a page or more may pay one request it did not need
    (closed unread, on a daemon thread: it never holds the job's exit)."""
    key = dataset_key(dataset_id)
    start_metadata = {ObjectMetadata.HARVESTED_AT: harvested_at, ObjectMetadata.SOURCE_DOMAIN: portal.host}
    if source.rows_updated_at is not None:
        start_metadata[ObjectMetadata.SOURCE_UPDATED_AT] = str(source.rows_updated_at)
    if settings.job_id:
        start_metadata[ObjectMetadata.HARVEST_JOB] = settings.job_id
    rows, offset, header = 0, 0, None
    next_page: Future[requests.Response] | None = None

    def ask_for_next_page(at: int) -> None:
        nonlocal next_page
        next_page = _in_background(partial(portal.open_csv_page, dataset_id, offset=at, limit=settings.page_size),
                                   "next-page")

    try:
        with StreamingUpload(s3, settings.bucket, key, part_size=settings.part_size, metadata=start_metadata) as upload:
            while True:
                if deadline.passed():
                    raise deadline.exceeded()
                if next_page is None:
                    response = portal.open_csv_page(dataset_id, offset=offset, limit=settings.page_size)
                else:
                    try:  # a page asked for ahead may still be waiting on a slow portal
                        # exception() waits without raising what the request raised: a TimeoutError
                        # here only ever means the wait ran out.
                        deadline.wait(next_page.exception, TimeoutError)
                    except TimeoutError:  # left to its thread; closed when it comes (finally)
                        raise deadline.exceeded("while waiting for the next page") from None
                    response = next_page.result()
                    next_page = None
                # The read-ahead ends (its reader stopped) before the response is closed.
                with response, closing(prefetched(response.iter_content(chunk_size=CHUNK), deadline=deadline,
                                                  unblock=partial(hang_up, response))) as chunks:
                    try:
                        page = copy_page(chunks, upload.write, expected_header=header, deadline=deadline,
                                         when_records=settings.page_size // 2,
                                         then=partial(ask_for_next_page, offset + settings.page_size))
                    except InvalidPage as error:
                        raise InvalidPage(f"page at offset {offset}: {error}") from None
                header = page.header
                rows += page.records
                if page.records < settings.page_size:
                    break
                offset += settings.page_size
            stored = upload.complete()
    finally:
        if next_page is not None:  # asked for, then not needed (or an error came first)
            next_page.add_done_callback(_close_response)
    return stored, rows


def _in_background(call: Callable[[], T], name: str) -> Future[T]:
    """Runs `call` on a daemon thread. Not an executor: its threads are joined at exit, so a
    request left waiting on a slow portal (retries and all: a page asked for ahead and then not
    needed, an inventory page past the job's deadline) would keep the finished job, and its
    Fargate bill, running."""
    future: Future[T] = Future()

    def run() -> None:
        future.set_running_or_notify_cancel()
        try:
            future.set_result(call())
        except BaseException as error:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def _close_response(future: Future[requests.Response]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def announce(s3: Any, sqs: Any, settings: Settings, message_body: str, stored: StoredObject, rows: int) -> None:
    """Sends the message, then tags the object with its row count and as announced (in that
    order: see module doc). A message that cannot be sent leaves the row count alone tagged."""
    try:
        sqs.send_message(QueueUrl=settings.queue_url, MessageBody=message_body)
    except Exception:
        try:
            put_tags(s3, stored, {ObjectTags.ROWS: str(rows)})
        except (ClientError, BotoCoreError) as error:  # the rerun harvests it again: nothing lost
            logger.warning("%s: the row count could not be tagged either: %s", stored.key, error)
        raise
    put_tags(s3, stored, {ObjectTags.ROWS: str(rows), ObjectTags.ANNOUNCED: ObjectTags.TRUE})


def already_done(state: StoredState, source: SourceMetadata, settings: Settings) -> str:
    """Why the stored copy (its rows tagged) needs no download: UNCHANGED or EARLIER_ATTEMPT; "" when
    it does."""
    if settings.force:
        # Only what an earlier attempt of this very job stored, and only while the portal's
        # rowsUpdatedAt is still the one stored with it (both None: nothing to compare, and this job
        # already harvested it): a dataset updated since is harvested again, as an unforced retry
        # does, instead of kept, or announced with the new rowsUpdatedAt over the old bytes.
        return (EARLIER_ATTEMPT if settings.job_id and state.harvest_job == settings.job_id
                and state.source_updated_at == source.rows_updated_at else "")
    if source.rows_updated_at is not None and state.source_updated_at == source.rows_updated_at:
        return UNCHANGED
    return ""


def harvest_dataset(entry: InventoryEntry, portal: PortalClient, s3: Any, sqs: Any, settings: Settings,
                    job: Deadline | None = None) -> Outcome:
    """Skip, re-announce or harvest one dataset by its deadline and the `job`'s, whichever comes
    first; never raises (a failure is an Outcome)."""
    started = time.monotonic()
    deadline = Deadline(started + settings.dataset_timeout,
                        f"the dataset deadline ({settings.dataset_timeout:g} s) passed", within=job)
    log = logging.LoggerAdapter(logger, {"dataset_id": entry.id})
    name = entry.name

    def outcome(status: str, **values: Any) -> Outcome:
        return Outcome(entry.id, status, name, seconds=round(time.monotonic() - started, 3), **values)

    try:
        view = portal.metadata(entry.id)
        source = metadata_from_view(view)
        if "inventory row" in entry.missing:
            entry = entry_from_view(entry.id, view)
            name = entry.name
            log.warning("%s: not in the inventory; fields taken from its metadata", entry.id)
        elif entry.missing:
            log.warning("%s: inventory row without %s; kept empty", entry.id, ", ".join(entry.missing))
        key = dataset_key(entry.id)
        state = None if settings.force and not settings.job_id else stored_state(s3, settings.bucket, key)
        if state is not None and state.rows is not None and (done := already_done(state, source, settings)):
            if state.announced:
                log.info("%s: %s (harvested %s, rowsUpdatedAt %s): skipped", entry.id, done, state.harvested_at,
                         source.rows_updated_at)
                return outcome(SKIPPED, reason=done, rows=state.rows, size=state.size, version_id=state.version_id)
            stored = StoredObject(settings.bucket, key, state.version_id, state.size)
            message = build_message(entry, source, bucket=settings.bucket, key=key, version_id=state.version_id,
                                    size=state.size, rows=state.rows, harvested_at=state.harvested_at)
            announce(s3, sqs, settings, message.to_body(), stored, state.rows)
            log.info("%s: stored but never announced: message re-sent", entry.id)
            return outcome(REANNOUNCED, rows=state.rows, size=state.size, version_id=state.version_id)
        harvested_at = utc_now()
        stored, rows = store_dataset(portal, s3, settings, entry.id, source, harvested_at, deadline)
        message = build_message(entry, source, bucket=settings.bucket, key=key, version_id=stored.version_id,
                                size=stored.size, rows=rows, harvested_at=harvested_at)
        announce(s3, sqs, settings, message.to_body(), stored, rows)
        log.info("%s: harvested %d rows, %d bytes", entry.id, rows, stored.size)
        note = NO_SOURCE_VERSION if source.rows_updated_at is None else ""  # nothing to compare a copy with
        if note:
            log.warning("%s: %s", entry.id, note)
        return outcome(HARVESTED, reason=note, rows=rows, size=stored.size, version_id=stored.version_id)
    except (PortalError, InvalidPage, DeadlineExceeded) as error:
        reason = str(error)
    except requests.RequestException as error:  # a body cut short, a timeout mid-page
        reason = f"download broken: {type(error).__name__}: {error}"
    except (ClientError, BotoCoreError) as error:
        reason = f"AWS: {error}"
    except Exception as error:  # noqa: BLE001 - one dataset must never stop the others
        log.exception("%s: unexpected error", entry.id)
        reason = f"unexpected: {type(error).__name__}: {error}"
    log.error("%s: failed: %s", entry.id, reason)
    return outcome(FAILED, reason=reason)


# --- The job ------------------------------------------------------------------------------


def harvest_all(entries: list[InventoryEntry], harvest: Callable[[InventoryEntry], Outcome], workers: int,
                job: Deadline) -> list[Outcome]:
    """`harvest(entry)` for each entry, `workers` at a time; the outcomes in the entries' order.

    Once the `job` deadline has passed, no entry is started; the running ones get STOP_GRACE
    seconds to stop. Each entry without an outcome then is a failed one saying why (the next
    attempt harvests it). The workers are daemon threads, not an executor's: one still blocked
    in a request (see STOP_GRACE) must not hold the job's exit into Batch's SIGKILL (main.leave
    does not wait for the threads such a dataset started either)."""
    outcomes: list[Outcome | None] = [None] * len(entries)
    started = [False] * len(entries)
    pending = iter(range(len(entries)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                index = None if job.passed() else next(pending, None)
                if index is None:
                    return
                started[index] = True
            entry = entries[index]
            try:
                outcomes[index] = harvest(entry)
            except BaseException as error:  # noqa: BLE001 - harvest never raises; if it does, the
                # entry must say why, not pass for one left behind (and the worker goes on).
                logger.exception("%s: unexpected error", entry.id)
                outcomes[index] = Outcome(entry.id, FAILED, entry.name,
                                          reason=f"unexpected: {type(error).__name__}: {error}")

    threads = [threading.Thread(target=work, name=f"{WORKER_PREFIX}{n}", daemon=True)
               for n in range(min(workers, len(entries)))]
    for thread in threads:
        thread.start()

    def gave_up() -> bool:  # re-read each time: SIGTERM can move the deadline during the wait
        return time.monotonic() > job.at + STOP_GRACE

    told = False
    for thread in threads:
        # Short joins, so the main thread sees the deadline pass (and can give up) while it waits.
        while thread.is_alive() and not gave_up():
            if job.passed() and not told:
                told = True
                logger.warning("%s: no dataset is started any more; the running ones stop", job.reached)
            thread.join(POLL)
    return [outcome if outcome is not None else _cut_short(entry, started[index], job)
            for index, (entry, outcome) in enumerate(zip(entries, outcomes))]


def datasets_still_running() -> int:
    """Dataset workers still alive: after harvest_all, the ones left behind (see STOP_GRACE)."""
    return sum(1 for thread in threading.enumerate() if thread.name.startswith(WORKER_PREFIX) and thread.is_alive())


def _cut_short(entry: InventoryEntry, started: bool, job: Deadline) -> Outcome:
    if started:  # blocked in a request the deadline does not bound: left to its daemon thread
        reason = (f"still running {STOP_GRACE:g} s after {job.reached}: left behind; "
                  "the next attempt harvests it")
    else:
        reason = f"not started: {job.reached}; the next attempt harvests it"
    logger.error("%s: failed: %s", entry.id, reason)
    return Outcome(entry.id, FAILED, entry.name, reason=reason)


def run(settings: Settings, portal: PortalClient, s3: Any, sqs: Any, job: Deadline | None = None) -> Summary:
    """Harvest this task's datasets, `settings.concurrency` at a time, by the `job` deadline
    (default: from JOB_TIMEOUT; main.py's SIGTERM handler brings it forward)."""
    started = time.monotonic()
    job = job if job is not None else job_deadline(settings.job_timeout, started)
    summary = Summary(shard_index=settings.shard_index, shard_count=settings.shard_count)

    def fail_inventory(reason: str) -> Summary:
        summary.outcomes.append(Outcome(settings.inventory_id, FAILED, "asset inventory", reason=reason))
        summary.seconds = time.monotonic() - started
        return summary

    # On a thread of its own, so the job's deadline (SIGTERM) also ends a wait inside one inventory
    # request, retries and Retry-After included: no upload is open yet, nothing to clean up.
    selection = _in_background(partial(select, portal, settings, job), "inventory")
    try:
        try:
            job.wait(selection.exception, TimeoutError)  # exception() returns what select raised
        except TimeoutError:  # so this is only the wait running out
            raise job.exceeded("while reading the inventory") from None
        selected, rejected = selection.result()
    except (PortalError, DeadlineExceeded) as error:
        logger.error("the inventory could not be read: %s", error)
        return fail_inventory(f"inventory: {error}")
    except Exception as error:  # noqa: BLE001 - the summary must still be printed
        logger.exception("the inventory could not be selected from")
        return fail_inventory(f"inventory: unexpected: {type(error).__name__}: {error}")
    for item in rejected:
        logger.warning("inventory row rejected: %s", item.reason)
    summary.outcomes += [Outcome(r.id, REJECTED, reason=r.reason) for r in rejected]
    if not selected and not settings.dataset_ids:
        # An inventory with no eligible dataset is a portal (or $where) problem, not "nothing to
        # do": a job that harvests nothing must not look like a success. An empty shard of a
        # non-empty selection is fine (exit 0).
        reason = f"no eligible dataset was found in the inventory ({len(rejected)} rows rejected)"
        logger.error("%s", reason)
        return fail_inventory(reason)
    entries = in_shard(selected, settings.shard_index, settings.shard_count)
    logger.info("%d datasets to harvest (shard %d of %d)", len(entries), settings.shard_index + 1,
                settings.shard_count)
    summary.outcomes += harvest_all(entries, partial(harvest_dataset, portal=portal, s3=s3, sqs=sqs,
                                                     settings=settings, job=job), settings.concurrency, job)
    summary.seconds = time.monotonic() - started
    return summary
