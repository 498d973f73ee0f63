"""The harvest end to end against the local portal and moto: completeness, storage, messages,
change detection, faults."""

from __future__ import annotations

import csv
import io
import re
import threading
import time

import pytest

from contract import ObjectMetadata, ObjectTags, dataset_key
from container.csv_pages import copy_page
from container.deadline import POLL, SIGTERM_REACHED, Deadline, job_deadline, job_margin
from container.harvest import NO_SOURCE_VERSION, utc_now
from container.portal_client import PortalClient, PortalError
from container.selection import shard_of
from contract.messages import HarvestMessage
from local.portal import Fault, generated_dataset, inventory_row
from tests.container.conftest import BUCKET, PAGE


def stored_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def statuses(summary) -> dict[str, str]:
    return {o.id: o.status for o in summary.outcomes}


def reasons(summary) -> dict[str, str]:
    return {o.id: o.reason for o in summary.outcomes}


def test_every_row_of_every_dataset_is_stored_beyond_1000_rows_and_many_pages(settings, harvest, aws, portal, server):
    summary = harvest(settings)

    assert summary.exit_code == 0
    assert set(statuses(summary).values()) == {"harvested"}
    big = portal.datasets["big1-2345"]
    assert big.row_count > 1000 and big.row_count > 3 * PAGE
    for dataset in portal.datasets.values():
        rows = stored_rows(aws.object(dataset_key(dataset.id)))
        assert rows[0] == [c["fieldName"] for c in dataset.metadata["columns"]]  # one header
        assert rows[1:] == dataset.rows()  # row for row, in order
    # 1250 rows in pages of 400: four pages; 800 rows: two full pages and an empty one.
    assert server.requests[("csv", "big1-2345")] == 4
    assert server.requests[("csv", "even-0800")] == 3
    assert all(params["$order"] == ":id" and params["$limit"] == str(PAGE)
               for endpoint, _, params in server.log if endpoint == "csv")


def test_the_next_page_is_asked_for_ahead_once_half_a_page_has_arrived(settings, harvest, aws, portal, monkeypatch):
    # Pages of 4000 rows (~350 KB, two reads of 256 KB): the first read brings more than half a
    # page, so the next page is requested on the next-page thread while the rest streams. The last
    # page (1000 rows, under half) asks for nothing more.
    dataset = generated_dataset("ahea-9000", 9000, seed=9)
    portal.add(dataset, inventory_row(dataset))
    calls = []
    open_page = PortalClient.open_csv_page

    def recording(self, dataset_id, *, offset, limit):
        calls.append((offset, threading.current_thread().name.split("_")[0]))
        return open_page(self, dataset_id, offset=offset, limit=limit)

    monkeypatch.setattr(PortalClient, "open_csv_page", recording)

    summary = harvest(settings, page_size=4000, dataset_ids=("ahea-9000",))

    assert statuses(summary) == {"ahea-9000": "harvested"}
    assert calls == [(0, "dataset"), (4000, "next-page"), (8000, "next-page")]
    assert aws.object(dataset_key("ahea-9000")) == dataset.data


def test_a_page_asked_for_in_vain_is_one_request_at_most_and_changes_nothing(settings, harvest, aws, portal, server):
    # 1000 rows in pages of 400: the last page holds 200 (half a page), so the page after it may be
    # asked for (or the request cancelled first: the harvest is done); 900 rows: the last page
    # holds 100, under half, so nothing is asked for in vain.
    for dataset_id, rows in (("half-1000", 1000), ("less-0900", 900)):
        dataset = generated_dataset(dataset_id, rows, seed=rows)
        portal.add(dataset, inventory_row(dataset))

    summary = harvest(settings, dataset_ids=("half-1000", "less-0900"))

    assert set(statuses(summary).values()) == {"harvested"}
    offsets = {d: [int(p["$offset"]) for e, i, p in list(server.log) if e == "csv" and i == d]
               for d in ("half-1000", "less-0900")}
    assert offsets["half-1000"] in ([0, 400, 800], [0, 400, 800, 1200])
    assert offsets["less-0900"] == [0, 400, 800]
    for dataset_id in offsets:
        assert aws.object(dataset_key(dataset_id)) == portal.datasets[dataset_id].data


def test_a_page_asked_for_ahead_that_fails_does_not_fail_a_dataset_that_did_not_need_it(
        settings, harvest, aws, portal, server, sleeps):
    dataset = generated_dataset("half-1000", 1000, seed=1)
    portal.add(dataset, inventory_row(dataset))
    server.faults.inject("half-1000", Fault.error(500, min_offset=1200))

    summary = harvest(settings, dataset_ids=("half-1000",))

    assert statuses(summary) == {"half-1000": "harvested"}
    assert aws.object(dataset_key("half-1000")) == dataset.data


def test_stored_object_is_byte_identical_to_the_portal_csv_with_quotes_newlines_and_accents(
        settings, harvest, aws, portal):
    harvest(settings)

    data = aws.object(dataset_key("big1-2345"))
    assert data == portal.datasets["big1-2345"].data
    text = data.decode()
    assert '"Sede ""Bogotá"", línea' in text and "\nsegunda línea" in text and "niño/niña" in text and '""' in text


def tags(aws, dataset_id: str) -> dict[str, str]:
    tag_set = aws.s3.get_object_tagging(Bucket=BUCKET, Key=dataset_key(dataset_id))["TagSet"]
    return {t["Key"]: t["Value"] for t in tag_set}


def test_object_metadata_records_source_update_and_harvest_time_and_tags_the_rows(settings, harvest, aws, portal):
    harvest(settings)

    head = aws.s3.head_object(Bucket=BUCKET, Key=dataset_key("big1-2345"))
    metadata = head["Metadata"]
    assert metadata[ObjectMetadata.SOURCE_UPDATED_AT] == str(portal.datasets["big1-2345"].metadata["rowsUpdatedAt"])
    assert metadata[ObjectMetadata.HARVESTED_AT].endswith("Z")
    assert all(value.isascii() for value in metadata.values())
    assert tags(aws, "big1-2345") == {ObjectTags.ROWS: "1250", ObjectTags.ANNOUNCED: ObjectTags.TRUE}


def test_each_harvested_dataset_is_tagged_once_after_its_message(settings, harvest, aws):
    calls = []
    for client, operation in ((aws.s3, "PutObjectTagging"), (aws.sqs, "SendMessage")):
        client.meta.events.register(f"before-parameter-build.*.{operation}",
                                    lambda model, params, **kwargs: calls.append((model.name, params)))

    harvest(settings, concurrency=1)

    assert [name for name, _ in calls] == ["SendMessage", "PutObjectTagging"] * 4
    tagged = [params["Tagging"]["TagSet"] for name, params in calls if name == "PutObjectTagging"]
    assert all({t["Key"] for t in tag_set} == {ObjectTags.ROWS, ObjectTags.ANNOUNCED} for tag_set in tagged)


def test_one_valid_message_per_stored_dataset_with_the_poc_keys_and_the_inventory_fields(
        settings, harvest, aws, portal):
    summary = harvest(settings)

    messages = aws.messages()
    assert sorted(m["ID"] for m in messages) == sorted(portal.datasets)
    by_id = {m["ID"]: m for m in messages}
    message = HarvestMessage.from_dict(by_id["big1-2345"])
    row = next(r for r in portal.inventory if r["uid"] == "big1-2345")
    head = aws.s3.head_object(Bucket=BUCKET, Key=dataset_key("big1-2345"))
    assert (message.OWNER, message.NAME, message.EMAIL, message.CATEGORY) == (
        row["owner"], row["name"], row["contact_email"], row["category"])
    assert (message.bucket, message.key, message.version_id) == (BUCKET, "big1-2345/big1-2345.csv", head["VersionId"])
    assert (message.size, message.rows) == (head["ContentLength"], 1250)
    assert message.source_updated_at == portal.datasets["big1-2345"].metadata["rowsUpdatedAt"]
    assert message.update_frequency == row["informacindedatos_frecuenciadeactualizacin"] == "Mensual"
    assert message.declared_rows == 1250 and message.declared_columns == 6
    assert [c.field_name for c in message.columns] == [c["fieldName"] for c in portal.datasets["big1-2345"].metadata["columns"]]
    assert message.license and message.attribution and message.audience == "public" and message.visits == 10
    assert {o.id: o.version_id for o in summary.outcomes}["big1-2345"] == head["VersionId"]


def test_unchanged_datasets_are_skipped_on_a_rerun_without_downloading(settings, harvest, aws, server):
    harvest(settings)
    aws.messages()
    csv_requests = sum(n for (endpoint, _), n in server.requests.items() if endpoint == "csv")

    summary = harvest(settings)

    assert set(statuses(summary).values()) == {"skipped"} and summary.exit_code == 0
    assert sum(n for (endpoint, _), n in server.requests.items() if endpoint == "csv") == csv_requests
    assert aws.messages() == []


def test_a_dataset_without_rows_updated_at_is_harvested_on_every_run_and_says_why(settings, harvest, aws, portal,
                                                                                  caplog):
    undated = generated_dataset("smal-0001", 60)
    del undated.metadata["rowsUpdatedAt"]
    portal.add(undated, inventory_row(undated))
    harvest(settings)
    aws.messages()

    summary = harvest(settings)

    by_id = {o.id: o for o in summary.outcomes}
    assert by_id["smal-0001"].status == "harvested" and by_id["smal-0001"].reason == NO_SOURCE_VERSION
    assert [o.status for i, o in by_id.items() if i != "smal-0001"] == ["skipped"] * 3
    assert [m["ID"] for m in aws.messages()] == ["smal-0001"]
    assert f"smal-0001: {NO_SOURCE_VERSION}" in caplog.text


def test_a_dataset_updated_on_the_portal_is_harvested_again_and_force_harvests_all(settings, harvest, aws, portal):
    harvest(settings)
    aws.messages()
    updated = generated_dataset("smal-0001", 60, rows_updated_at=1760000000)
    portal.add(updated, inventory_row(updated))

    summary = harvest(settings)

    assert statuses(summary)["smal-0001"] == "harvested"
    assert [s for i, s in statuses(summary).items() if i != "smal-0001"] == ["skipped"] * 3
    assert aws.object(dataset_key("smal-0001")) == updated.data
    assert [m["ID"] for m in aws.messages()] == ["smal-0001"]
    assert set(statuses(harvest(settings, force=True)).values()) == {"harvested"}


def test_a_forced_job_retried_by_batch_redoes_only_what_its_earlier_attempt_left(settings, harvest, aws, server):
    # Attempt 1 of a forced job: every dataset again, but one fails (the job exits 1, Batch retries).
    harvest(settings)
    aws.messages()
    server.faults.inject("smal-0001", Fault.error(500))
    first = harvest(settings, force=True, job_id="job-1")
    assert statuses(first)["smal-0001"] == "failed" and first.exit_code == 1
    stored = {i: aws.s3.head_object(Bucket=BUCKET, Key=dataset_key(i))["Metadata"] for i in statuses(first)}
    assert {i: m.get(ObjectMetadata.HARVEST_JOB) for i, m in stored.items()} == {
        i: (None if i == "smal-0001" else "job-1") for i in statuses(first)}
    assert len(aws.messages()) == 3
    server.faults.clear("smal-0001")
    csv_requests = {i: server.requests[("csv", i)] for i in statuses(first)}

    # Attempt 2 (Batch gives it the same AWS_BATCH_JOB_ID): only the dataset attempt 1 left.
    second = harvest(settings, force=True, job_id="job-1")

    assert statuses(second) == {i: ("harvested" if i == "smal-0001" else "skipped") for i in statuses(first)}
    assert reasons(second)["big1-2345"] == "stored by an earlier attempt of this job" and second.exit_code == 0
    assert {i: server.requests[("csv", i)] - n for i, n in csv_requests.items()} == {
        i: (1 if i == "smal-0001" else 0) for i in csv_requests}
    assert [m["ID"] for m in aws.messages()] == ["smal-0001"]
    # Another forced job (another id) harvests everything again; so does a forced run by hand (no id).
    assert set(statuses(harvest(settings, force=True, job_id="job-2")).values()) == {"harvested"}
    assert set(statuses(harvest(settings, force=True)).values()) == {"harvested"}
    assert ObjectMetadata.HARVEST_JOB not in aws.s3.head_object(Bucket=BUCKET, Key=dataset_key("smal-0001"))["Metadata"]


def test_a_forced_jobs_retry_harvests_again_what_the_portal_changed_since_the_earlier_attempt(
        settings, harvest, aws, portal):
    # Attempt 1 of a forced job stores every dataset (one without rowsUpdatedAt); before Batch
    # retries it, the portal updates two of them, one of which attempt 1 stored but never announced.
    undated = generated_dataset("smal-0001", 37, seed=37)
    del undated.metadata["rowsUpdatedAt"]
    portal.add(undated, inventory_row(undated))
    first = harvest(settings, force=True, job_id="job-1")
    assert set(statuses(first).values()) == {"harvested"}
    aws.messages()
    aws.s3.put_object_tagging(Bucket=BUCKET, Key=dataset_key("big1-2345"),
                              Tagging={"TagSet": [{"Key": ObjectTags.ROWS, "Value": "1250"}]})
    for dataset_id, rows in (("even-0800", 900), ("big1-2345", 1300)):
        updated = generated_dataset(dataset_id, rows, seed=rows, rows_updated_at=1760000000)
        portal.add(updated, inventory_row(updated))

    second = harvest(settings, force=True, job_id="job-1")

    # As an unforced retry would: the changed ones are harvested again, not skipped nor announced
    # with the new rowsUpdatedAt over the old bytes; the unchanged ones (the undated one too) are not.
    assert statuses(second) == {"big1-2345": "harvested", "even-0800": "harvested",
                                "smal-0001": "skipped", "empt-0000": "skipped"}
    messages = {m["ID"]: m for m in aws.messages()}
    assert set(messages) == {"big1-2345", "even-0800"}
    for dataset_id in messages:
        assert aws.object(dataset_key(dataset_id)) == portal.datasets[dataset_id].data
        assert messages[dataset_id]["source_updated_at"] == 1760000000


def test_a_stored_but_unannounced_dataset_is_announced_again_without_downloading(settings, harvest, aws, server):
    harvest(settings)
    first = {m["ID"]: m for m in aws.messages()}
    # As if the job died between storing the object and sending its message.
    aws.s3.put_object_tagging(Bucket=BUCKET, Key=dataset_key("big1-2345"),
                              Tagging={"TagSet": [{"Key": ObjectTags.ROWS, "Value": "1250"}]})
    csv_requests = server.requests[("csv", "big1-2345")]

    summary = harvest(settings)

    assert statuses(summary)["big1-2345"] == "re-announced"
    assert server.requests[("csv", "big1-2345")] == csv_requests
    [message] = aws.messages()
    assert {k: v for k, v in message.items()} == first["big1-2345"]
    assert tags(aws, "big1-2345")[ObjectTags.ANNOUNCED] == ObjectTags.TRUE
    assert statuses(harvest(settings))["big1-2345"] == "skipped"


def test_a_stored_object_without_its_row_count_is_harvested_again(settings, harvest, aws):
    harvest(settings)
    aws.s3.delete_object_tagging(Bucket=BUCKET, Key=dataset_key("smal-0001"))

    assert statuses(harvest(settings))["smal-0001"] == "harvested"
    assert tags(aws, "smal-0001")[ObjectTags.ROWS] == "37"


def test_a_failed_message_send_leaves_the_dataset_unannounced_so_the_rerun_sends_it(settings, harvest, aws):
    def refuse(**kwargs):
        raise RuntimeError("SQS unavailable")

    aws.sqs.meta.events.register("before-call.sqs.SendMessage", refuse)
    summary = harvest(settings)
    aws.sqs.meta.events.unregister("before-call.sqs.SendMessage", refuse)

    assert set(statuses(summary).values()) == {"failed"} and summary.exit_code == 1
    rerun = harvest(settings)
    assert set(statuses(rerun).values()) == {"re-announced"} and rerun.exit_code == 0
    assert len(aws.messages()) == 4


def test_throttling_is_retried_honouring_retry_after(settings, harvest, aws, server, portal, sleeps):
    server.faults.inject("big1-2345", Fault.throttle(retry_after=3, times=2))
    server.faults.inject("smal-0001", Fault.throttle(retry_after=2, times=1, endpoint="metadata"))

    summary = harvest(settings)

    assert summary.exit_code == 0
    assert aws.object(dataset_key("big1-2345")) == portal.datasets["big1-2345"].data
    assert sorted(sleeps) == [2, 3, 3]


def test_retry_after_is_capped_so_a_dataset_cannot_wait_forever(settings, harvest, server, sleeps):
    server.faults.inject("smal-0001", Fault.throttle(retry_after=86400, times=1))

    summary = harvest(settings, retry_after_max=4)

    assert statuses(summary)["smal-0001"] == "harvested"
    assert sleeps == [4]


@pytest.mark.parametrize("fault", [Fault.error(500, times=2), Fault.error(503, times=1), Fault.error(202, times=2),
                                   Fault.slow(3.0, times=1)], ids=["500", "503", "202", "read-timeout"])
def test_transient_faults_are_retried_and_the_dataset_is_complete(settings, harvest, aws, server, portal, sleeps, fault):
    server.faults.inject("big1-2345", fault)

    summary = harvest(settings, http_timeout=1.0)

    assert statuses(summary)["big1-2345"] == "harvested"
    assert server.requests[("csv", "big1-2345")] == 4 + fault.times  # four pages, plus the retries
    assert aws.object(dataset_key("big1-2345")) == portal.datasets["big1-2345"].data


def test_metadata_still_processing_after_the_retries_fails_the_dataset(settings, harvest, aws, server, sleeps):
    server.faults.inject("smal-0001", Fault.error(202, endpoint="metadata"))

    summary = harvest(settings, dataset_ids=("smal-0001",))

    assert statuses(summary) == {"smal-0001": "failed"}
    assert "not the metadata of smal-0001" in reasons(summary)["smal-0001"]
    assert server.requests[("metadata", "smal-0001")] == settings.http_retries + 1
    assert aws.keys() == [] and aws.messages() == []


def test_retries_are_bounded_and_a_permanent_failure_fails_only_its_dataset(settings, harvest, aws, server, sleeps):
    server.faults.inject("big1-2345", Fault.error(500))

    summary = harvest(settings)

    assert summary.exit_code == 1
    assert statuses(summary) == {"big1-2345": "failed", "empt-0000": "harvested", "even-0800": "harvested",
                                 "smal-0001": "harvested"}
    assert "HTTP 500" in reasons(summary)["big1-2345"]
    assert server.requests[("csv", "big1-2345")] == settings.http_retries + 1
    assert len(sleeps) == settings.http_retries - 1  # urllib3 retries once at once, then backs off
    assert sleeps == sorted(sleeps)  # exponential
    assert dataset_key("big1-2345") not in aws.keys()
    assert sorted(m["ID"] for m in aws.messages()) == ["empt-0000", "even-0800", "smal-0001"]


@pytest.mark.parametrize(("fault", "reason"), [
    (Fault.html(times=1), "HTML page"),
    (Fault.html(times=1, endpoint="metadata"), "metadata"),
    (Fault.header_change(), "header differs"),
    (Fault.truncated(min_offset=PAGE, declare_length=False), "declares no length"),
    (Fault.truncated(min_offset=PAGE, declare_length=False, at_record=True), "declares no length"),
    (Fault.truncated(min_offset=2 * PAGE), "download broken"),
    (Fault.truncated(min_offset=2 * PAGE, at_record=True), "download broken"),
], ids=["html-page", "html-metadata", "header-change", "truncated-no-length", "truncated-no-length-at-a-record",
        "truncated-short-read", "truncated-short-read-at-a-record"])
def test_a_wrong_answer_fails_the_dataset_with_a_clear_reason_and_stores_nothing(
        settings, harvest, aws, server, fault, reason):
    server.faults.inject("big1-2345", fault)

    summary = harvest(settings)

    assert statuses(summary)["big1-2345"] == "failed"
    assert reason in reasons(summary)["big1-2345"]
    assert dataset_key("big1-2345") not in aws.keys()
    assert "big1-2345" not in [m["ID"] for m in aws.messages()]
    assert [s for i, s in statuses(summary).items() if i != "big1-2345"] == ["harvested"] * 3


def test_pages_sent_gzipped_and_chunked_as_the_real_portal_sends_them_are_stored_exactly(
        settings, harvest, aws, portal, server):
    # Socrata answers /resource CSV with Content-Encoding: gzip and
    # Transfer-Encoding: chunked, no Content-Length; the other tests' pages carry a length.
    server.faults.inject("big1-2345", Fault.socrata_transfer())

    summary = harvest(settings)

    assert set(statuses(summary).values()) == {"harvested"}
    assert aws.object(dataset_key("big1-2345")) == portal.datasets["big1-2345"].data
    assert server.requests[("csv", "big1-2345")] == 4  # 1250 rows in pages of 400


def test_a_gzipped_chunked_page_cut_short_fails_the_dataset_and_stores_nothing(settings, harvest, aws, server):
    server.faults.inject("big1-2345", Fault.socrata_transfer(cut=True, min_offset=PAGE))

    summary = harvest(settings)

    assert statuses(summary)["big1-2345"] == "failed"
    assert "download broken" in reasons(summary)["big1-2345"]
    assert dataset_key("big1-2345") not in aws.keys()
    assert "big1-2345" not in [m["ID"] for m in aws.messages()]


def test_a_failure_after_parts_were_uploaded_aborts_the_multipart_upload(settings, harvest, aws, portal, server):
    large = generated_dataset("larg-0001", 90000, seed=3)  # about 8 MB: parts go up before the end
    portal.add(large, inventory_row(large))
    server.faults.inject("larg-0001", Fault.truncated(min_offset=60000))
    parts = []
    aws.s3.meta.events.register("before-call.s3.UploadPart", lambda **kwargs: parts.append(1))

    summary = harvest(settings, page_size=30000, dataset_ids=("larg-0001",))

    assert statuses(summary) == {"larg-0001": "failed"}
    assert parts, "the failure must come after at least one uploaded part"
    assert aws.keys() == [] and aws.pending_uploads() == []
    assert aws.messages() == []


def test_a_dataset_larger_than_a_part_is_stored_by_multipart_upload_intact(settings, harvest, aws, portal):
    large = generated_dataset("larg-0002", 70000, seed=5)
    portal.add(large, inventory_row(large))

    summary = harvest(settings, page_size=25000, dataset_ids=("larg-0002",))

    assert statuses(summary) == {"larg-0002": "harvested"}
    assert len(large.data) > settings.part_size
    assert aws.object(dataset_key("larg-0002")) == large.data
    assert tags(aws, "larg-0002") == {ObjectTags.ROWS: "70000", ObjectTags.ANNOUNCED: ObjectTags.TRUE}
    assert aws.pending_uploads() == []


def test_the_deadline_fails_a_dataset_that_takes_too_long(settings, harvest, server, aws):
    server.faults.inject("big1-2345", Fault.slow(0.4, times=None))

    summary = harvest(settings, dataset_timeout=0.5, http_timeout=2.0, dataset_ids=("big1-2345",))

    assert statuses(summary) == {"big1-2345": "failed"}
    assert "deadline" in reasons(summary)["big1-2345"]
    assert aws.keys() == [] and aws.pending_uploads() == []


def test_the_deadline_stops_a_page_that_trickles_in_a_byte_at_a_time(settings, harvest, server, aws):
    # Every socket read returns within the HTTP timeout, so only the dataset deadline can end it.
    server.faults.inject("big1-2345", Fault.trickle(0.05))
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(summary=harvest(
        settings, dataset_timeout=1.0, http_timeout=2.0, dataset_ids=("big1-2345",))), daemon=True)

    worker.start()
    worker.join(60)  # a liveness bound for the test run, far beyond the deadline

    assert not worker.is_alive(), "the harvest outlived its dataset deadline"
    assert statuses(outcome["summary"]) == {"big1-2345": "failed"}
    assert "deadline" in reasons(outcome["summary"])["big1-2345"]
    assert aws.keys() == [] and aws.pending_uploads() == []
    # The job hung up on the page (closing alone would wait for the read-ahead's blocked read, that
    # is for the portal to finish trickling: TRICKLE_SECONDS).
    for _ in range(100):
        if server.hung_up["big1-2345"]:
            break
        threading.Event().wait(0.1)
    assert server.hung_up["big1-2345"] == 1


def test_the_deadline_stops_the_wait_for_a_page_asked_for_ahead(settings, harvest, server, aws):
    # 3 s: the metadata, the S3 check and the first page (0.5 s on a loaded machine) come first.
    server.faults.inject("big1-2345", Fault("slow", "csv", delay=10.0, min_offset=PAGE))

    summary = harvest(settings, dataset_timeout=3.0, dataset_ids=("big1-2345",))

    assert statuses(summary) == {"big1-2345": "failed"}
    assert reasons(summary)["big1-2345"] == "the dataset deadline (3 s) passed while waiting for the next page"
    assert aws.keys() == [] and aws.pending_uploads() == []


def test_no_page_is_read_once_the_deadline_has_passed_between_pages(settings, harvest, server, aws, monkeypatch):
    import container.harvest

    def slow_after_the_first_page(*args, **kwargs):
        page = copy_page(*args, **kwargs)
        while kwargs["expected_header"] is None and not kwargs["deadline"].passed():
            time.sleep(0.01)  # the deadline passes between the first page and the next
        return page

    monkeypatch.setattr(container.harvest, "copy_page", slow_after_the_first_page)

    # 2 s: the first page must end before it (0.5 s on a loaded machine).
    summary = harvest(settings, dataset_timeout=2.0, dataset_ids=("big1-2345",))

    assert reasons(summary) == {"big1-2345": "the dataset deadline (2 s) passed"}  # not "while downloading"
    assert aws.keys() == [] and aws.pending_uploads() == []


def soon_job_deadline(seconds: float) -> Deadline:
    """The deadline of a job with JOB_TIMEOUT=300 that started long enough ago for it to come in `seconds`."""
    return job_deadline(300, started=time.monotonic() + seconds - 300 + job_margin(300))


JOB_LIMIT = "the job's time limit (JOB_TIMEOUT=300 s) was reached"


def test_the_job_deadline_stops_a_running_dataset_and_starts_no_other_then_the_rerun_does_the_rest(
        settings, harvest, server, aws, portal):
    # One at a time: smal-0001 is harvested, big1-2345 trickles past the job's deadline (its own
    # is 30 minutes away), even-0800 is never started.
    server.faults.inject("big1-2345", Fault.trickle(0.05))
    began = time.monotonic()

    # 4 s: the inventory, smal-0001 and big1-2345's first bytes come first (1.6 s in all idle,
    # more on a loaded machine); big1-2345 trickles for far longer.
    summary = harvest(settings, job=soon_job_deadline(4), concurrency=1,
                      dataset_ids=("smal-0001", "big1-2345", "even-0800"))

    assert time.monotonic() - began < 4 + POLL + 2
    assert summary.exit_code == 1
    assert statuses(summary) == {"smal-0001": "harvested", "big1-2345": "failed", "even-0800": "failed"}
    assert reasons(summary)["big1-2345"] == f"{JOB_LIMIT} while downloading"
    assert reasons(summary)["even-0800"] == f"not started: {JOB_LIMIT}; the next attempt harvests it"
    assert server.requests[("metadata", "even-0800")] == 0
    assert aws.keys() == [dataset_key("smal-0001")] and aws.pending_uploads() == []

    server.faults.clear()
    rerun = harvest(settings, concurrency=1, dataset_ids=("smal-0001", "big1-2345", "even-0800"))
    assert statuses(rerun) == {"smal-0001": "skipped", "big1-2345": "harvested", "even-0800": "harvested"}


def sigterm_once(ready: threading.Event) -> tuple[Deadline, list[float]]:
    """A job deadline that SIGTERM brings forward (as its handler does) once `ready` is set, and a
    list that then holds the moment it did."""
    job = Deadline()
    signalled: list[float] = []

    def sigterm() -> None:
        ready.wait(30)
        signalled.append(time.monotonic())
        job.bring_forward(signalled[0], SIGTERM_REACHED)

    threading.Thread(target=sigterm, daemon=True).start()
    return job, signalled


def test_sigterm_stops_the_wait_for_a_page_asked_for_ahead_at_once(settings, harvest, server, aws, monkeypatch):
    # The page after the first takes 5 s to come: bringing the job's deadline forward (what the
    # SIGTERM handler does) must end the wait within a poll, not when the page comes.
    import container.harvest

    server.faults.inject("big1-2345", Fault("slow", "csv", delay=10.0, min_offset=PAGE))
    first_page_done, waiting = threading.Event(), threading.Event()

    def signalling_copy_page(*args, **kwargs):
        page = copy_page(*args, **kwargs)
        first_page_done.set()
        return page

    def signalling_wait(self, get, timed_out):
        if first_page_done.is_set():  # the first wait after the first page: for the page asked for ahead
            waiting.set()
        return wait(self, get, timed_out)

    wait = Deadline.wait
    monkeypatch.setattr(container.harvest, "copy_page", signalling_copy_page)
    monkeypatch.setattr(Deadline, "wait", signalling_wait)
    job, signalled = sigterm_once(waiting)

    summary = harvest(settings, job=job, concurrency=1, dataset_ids=("big1-2345", "smal-0001"))

    assert time.monotonic() - signalled[0] < POLL + 1.5
    assert reasons(summary) == {
        "big1-2345": f"{SIGTERM_REACHED} while waiting for the next page",
        "smal-0001": f"not started: {SIGTERM_REACHED}; the next attempt harvests it"}
    assert aws.keys() == [] and aws.pending_uploads() == []


def test_a_dataset_blocked_in_a_request_past_the_grace_is_reported_and_left_behind(
        settings, harvest, aws, monkeypatch):
    import container.harvest

    release, entered = threading.Event(), threading.Event()

    def blocked(self, dataset_id):  # a metadata request the deadline does not bound
        entered.set()
        release.wait(30)
        raise PortalError("released by the test")

    monkeypatch.setattr(PortalClient, "metadata", blocked)
    monkeypatch.setattr(container.harvest, "STOP_GRACE", 0.5)
    job, signalled = sigterm_once(entered)
    try:
        summary = harvest(settings, job=job, concurrency=1, dataset_ids=("smal-0001", "even-0800"))
    finally:
        release.set()

    assert time.monotonic() - signalled[0] < 0.5 + POLL + 1
    assert reasons(summary) == {
        "smal-0001": f"still running 0.5 s after {SIGTERM_REACHED}: left behind; the next attempt harvests it",
        "even-0800": f"not started: {SIGTERM_REACHED}; the next attempt harvests it"}


def test_the_job_deadline_stops_the_inventory_read(settings, harvest, server):
    summary = harvest(settings, job=soon_job_deadline(-1))

    assert summary.exit_code == 1
    assert reasons(summary) == {"uzcf-b9dh": f"inventory: {JOB_LIMIT} while reading the inventory"}
    assert server.requests[("json", "uzcf-b9dh")] == 0


def test_sigterm_ends_the_wait_for_an_inventory_request_in_progress(settings, harvest, monkeypatch):
    # One inventory request can take minutes (retries, Retry-After): the summary must come first.
    release = threading.Event()

    def blocked(self, *args, **kwargs):
        release.wait(30)
        raise PortalError("released by the test")

    monkeypatch.setattr(PortalClient, "inventory_page", blocked)
    job = Deadline()
    threading.Timer(0.3, lambda: job.bring_forward(time.monotonic(), SIGTERM_REACHED)).start()
    began = time.monotonic()
    try:
        summary = harvest(settings, job=job)
    finally:
        release.set()

    assert time.monotonic() - began < 0.3 + POLL + 1
    assert summary.exit_code == 1
    assert reasons(summary) == {"uzcf-b9dh": f"inventory: {SIGTERM_REACHED} while reading the inventory"}


def test_an_error_escaping_a_dataset_is_its_reason_and_the_others_go_on(monkeypatch):
    import container.harvest
    from container.harvest import InventoryEntry, Outcome, harvest_all

    def harvest(entry: InventoryEntry) -> Outcome:
        if entry.id == "bad1-0001":
            raise MemoryError("out of memory")  # harvest_dataset catches Exception, not this
        return Outcome(entry.id, "harvested", entry.name)

    monkeypatch.setattr(container.harvest, "STOP_GRACE", 0.5)
    entries = [InventoryEntry(id=i) for i in ("bad1-0001", "good-0001", "good-0002")]
    outcomes = harvest_all(entries, harvest, workers=1, job=Deadline())
    assert [(o.id, o.status, o.reason) for o in outcomes] == [
        ("bad1-0001", "failed", "unexpected: MemoryError: out of memory"),
        ("good-0001", "harvested", ""), ("good-0002", "harvested", "")]


def test_an_inventory_without_an_eligible_dataset_fails_the_job(settings, harvest, portal):
    portal.inventory = [{**row, "audience": "private"} for row in portal.inventory]

    summary = harvest(settings)

    assert summary.exit_code == 1
    assert statuses(summary) == {"uzcf-b9dh": "failed"}
    assert "no eligible dataset was found" in reasons(summary)["uzcf-b9dh"]


def test_an_unexpected_error_in_the_selection_fails_the_job_with_its_summary(settings, harvest, monkeypatch):
    def broken(*args, **kwargs):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr("container.harvest.select_entries", broken)

    summary = harvest(settings)

    assert summary.exit_code == 1
    assert reasons(summary) == {"uzcf-b9dh": "inventory: unexpected: OverflowError: cannot convert float infinity "
                                             "to integer"}


def test_an_empty_shard_of_a_non_empty_selection_succeeds(settings, harvest, portal):
    count = 16
    empty = next(i for i in range(count) if all(shard_of(d, count) != i for d in portal.datasets))

    summary = harvest(settings, shard_count=count, shard_index=empty)

    assert summary.exit_code == 0 and summary.outcomes == []


def test_a_page_asked_for_ahead_and_not_needed_does_not_keep_the_job_alive(settings, harvest, server):
    # smal-0001 has 37 rows: with pages of 60 the next page is asked for at 30 records, then not
    # needed; the portal takes its time to answer it.
    server.faults.inject("smal-0001", Fault("slow", "csv", delay=10.0, min_offset=60))
    before = set(threading.enumerate())  # earlier tests' requests may still be waiting

    summary = harvest(settings, page_size=60, dataset_ids=("smal-0001",))

    assert statuses(summary) == {"smal-0001": "harvested"}
    assert server.requests[("csv", "smal-0001")] == 2  # the page, and the one asked for ahead
    waiting = [t for t in threading.enumerate() if t.name.startswith("next-page") and t not in before]
    assert waiting and not [t for t in waiting if not t.daemon]  # the interpreter's exit does not wait


def test_concurrency_is_bounded_by_the_setting(settings, harvest, server):
    for dataset_id in ("big1-2345", "even-0800", "smal-0001", "empt-0000"):
        server.faults.inject(dataset_id, Fault.slow(0.2, times=1))

    harvest(settings, concurrency=2)

    assert server.peak_datasets_in_flight == 2
    assert server.peak_in_flight <= 2 * 2  # each dataset: a page, and the next one asked for ahead


def test_the_inventory_unreachable_fails_the_job(settings, harvest, server, sleeps):
    server.faults.inject("uzcf-b9dh", Fault.error(503, endpoint="json"))

    summary = harvest(settings)

    assert summary.exit_code == 1
    assert statuses(summary) == {"uzcf-b9dh": "failed"}


def test_the_app_token_is_sent_to_the_portal(settings, harvest, server):
    harvest(settings, app_token="token-123")

    assert server.app_tokens == {"token-123"}


def test_local_portal_traffic_is_not_intercepted_by_the_in_process_aws_mock(server, aws):
    import requests

    response = requests.get(f"{server.url}/api/views/smal-0001.json", timeout=5)

    assert response.json()["id"] == "smal-0001"
    assert server.requests[("metadata", "smal-0001")] == 1


def test_the_harvest_time_has_milliseconds_so_two_harvests_of_a_second_stay_ordered():
    # The metadata Lambda keeps the later of two harvests of the same bytes by this string's order.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now())
