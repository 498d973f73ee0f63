"""The streamed S3 upload against moto: multipart, single put, and abort on failure; its memory
against a client that keeps nothing."""

from __future__ import annotations

import os
import threading
import tracemalloc

import pytest

from container.upload import StreamingUpload
from tests.container.conftest import BUCKET

MIB = 1024 * 1024


def test_bytes_written_in_small_pieces_arrive_as_one_object(aws):
    data = os.urandom(11 * MIB + 123)
    calls = []
    aws.s3.meta.events.register("before-call.s3.UploadPart", lambda **kwargs: calls.append(1))

    with StreamingUpload(aws.s3, BUCKET, "k/k.csv", part_size=5 * MIB, metadata={"a": "1"}) as upload:
        for i in range(0, len(data), 100_000):
            upload.write(data[i: i + 100_000])
        stored = upload.complete()

    assert len(calls) == 3  # 5 MiB + 5 MiB + the rest
    assert aws.object("k/k.csv") == data and stored.size == len(data)
    head = aws.s3.head_object(Bucket=BUCKET, Key="k/k.csv")
    assert head["Metadata"] == {"a": "1"} and head["VersionId"] == stored.version_id
    assert aws.pending_uploads() == []


def test_an_object_smaller_than_a_part_is_stored_with_one_put(aws):
    calls = []
    aws.s3.meta.events.register("before-call.s3.CreateMultipartUpload", lambda **kwargs: calls.append(1))

    with StreamingUpload(aws.s3, BUCKET, "s/s.csv", part_size=5 * MIB, metadata={"a": "1"}) as upload:
        upload.write(b"header\n")
        upload.complete()

    assert calls == [] and aws.object("s/s.csv") == b"header\n"
    assert aws.s3.head_object(Bucket=BUCKET, Key="s/s.csv")["Metadata"] == {"a": "1"}


class DiscardingS3:
    """Answers like S3 and keeps no bytes, so traced memory is the upload's own."""

    def create_multipart_upload(self, **kwargs):
        return {"UploadId": "u"}

    def upload_part(self, *, PartNumber, **kwargs):
        return {"ETag": f"e{PartNumber}", "ChecksumCRC32": "c"}

    def complete_multipart_upload(self, **kwargs):
        return {"VersionId": "v"}

    def put_object(self, **kwargs):
        return {"VersionId": "v"}


def peak_traced_bytes(write_all) -> int:
    tracemalloc.start()
    try:
        write_all()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_object_smaller_than_a_part_never_takes_a_whole_parts_memory():
    def small():
        upload = StreamingUpload(DiscardingS3(), BUCKET, "s/s.csv", part_size=8 * MIB, metadata={})
        upload.write(b"x" * 10_000)
        upload.complete()

    assert peak_traced_bytes(small) < MIB


def test_memory_stays_at_one_plus_in_flight_parts_however_many_parts_go_up():
    piece = b"x" * MIB  # made before tracing: the caller's, not the upload's

    def sixty_parts():
        upload = StreamingUpload(DiscardingS3(), BUCKET, "s/s.csv", part_size=5 * MIB, metadata={}, max_in_flight=2)
        for _ in range(300):
            upload.write(piece)
        assert upload.complete().size == 300 * MIB

    assert peak_traced_bytes(sixty_parts) < 3 * 5 * MIB * 1.15  # a growing buffer may over-allocate 1/8


def test_a_failure_while_writing_aborts_the_upload_leaving_no_object_and_no_parts(aws):
    with pytest.raises(RuntimeError, match="source broke"):
        with StreamingUpload(aws.s3, BUCKET, "f/f.csv", part_size=5 * MIB, metadata={}) as upload:
            upload.write(os.urandom(12 * MIB))
            raise RuntimeError("source broke")

    assert aws.keys() == [] and aws.pending_uploads() == []


def test_a_failed_part_upload_surfaces_and_aborts(aws):
    def reject(params, **kwargs):
        if params.get("PartNumber") == 2:
            raise ConnectionError("S3 unreachable")

    aws.s3.meta.events.register("before-parameter-build.s3.UploadPart", reject)
    with pytest.raises(ConnectionError):
        with StreamingUpload(aws.s3, BUCKET, "p/p.csv", part_size=5 * MIB, metadata={}, max_in_flight=1) as upload:
            for _ in range(4):
                upload.write(os.urandom(5 * MIB))
            upload.complete()

    assert aws.keys() == [] and aws.pending_uploads() == []


def test_the_writer_goes_on_while_the_multipart_upload_is_being_created(aws):
    release = threading.Event()

    def hold(**kwargs):
        # Under a synchronous CreateMultipartUpload, write() itself would wait here, and fail.
        assert release.wait(10), "CreateMultipartUpload blocked the writer"

    aws.s3.meta.events.register("before-call.s3.CreateMultipartUpload", hold)
    data = os.urandom(5 * MIB + 10)
    with StreamingUpload(aws.s3, BUCKET, "c/c.csv", part_size=5 * MIB, metadata={}) as upload:
        upload.write(data)  # fills the first part: the upload is being created
        release.set()
        upload.complete()

    assert aws.object("c/c.csv") == data and aws.pending_uploads() == []


def test_a_failed_create_multipart_upload_surfaces_and_leaves_nothing(aws):
    def reject(**kwargs):
        raise ConnectionError("S3 unreachable")

    aws.s3.meta.events.register("before-parameter-build.s3.CreateMultipartUpload", reject)
    with pytest.raises(ConnectionError):
        with StreamingUpload(aws.s3, BUCKET, "n/n.csv", part_size=5 * MIB, metadata={}) as upload:
            upload.write(os.urandom(12 * MIB))
            upload.complete()

    assert aws.keys() == [] and aws.pending_uploads() == []
