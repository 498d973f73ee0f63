"""A streamed S3 upload: bytes in, one object out, never a partial object.

Bytes are copied into fixed part buffers (S3 rejects parts under 5 MiB but the last); a full
buffer is sent as a multipart part by a small pool while the next one fills. Each buffer
grows with the bytes of its first part (so a dataset smaller than one part, the portal's usual
case, never touches a whole part's memory), then is reused at full size: memory stays at
(1 + max_in_flight) x part_size whatever the dataset's size (allocating a fresh 8 MiB buffer
per part lets the C allocator's heap creep up with the part count). A dataset smaller than one
part is stored with a single PutObject. Any failure aborts the multipart upload.

Parts carry CRC32 checksums (as boto3's managed transfer sends them), so S3 checks every part
and the object gets a composite checksum.

Why not boto3's `upload_fileobj`: it streams too, but it returns nothing about the object it
stored (the message carries the version id), and from a non-seekable stream it reads ahead as
many parts as it has threads (10 by default: see the baseline's peak RSS in docs/benchmarks.md).
Tags (the row count, known only at the end) are put on the stored version afterwards by
`put_tags` (PutObjectTagging: no copy of the object, no second version).
"""

from __future__ import annotations

import queue
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

CHECKSUM = "CRC32"
MAX_IN_FLIGHT = 2  # parts uploading at once, by default


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    version_id: str | None
    size: int


class StreamingUpload:
    """`StreamingUpload(..., metadata=...)`, `write()` bytes, then `complete()`; `abort()` (or
    leaving a `with` block on an exception) removes every uploaded part."""

    def __init__(self, s3: Any, bucket: str, key: str, *, part_size: int, metadata: dict[str, str],
                 content_type: str = "text/csv; charset=utf-8", max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self._s3 = s3
        self.bucket, self.key = bucket, key
        self._part_size = part_size
        self._metadata = metadata
        self._content_type = content_type
        self._max_in_flight = max_in_flight
        self._buffer = bytearray()  # grows up to part_size (see write)
        self._used = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._buffers = 1
        self._created: Future | None = None  # CreateMultipartUpload's answer
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future] = []
        self._parts: list[dict] = []
        self.size = 0

    def __enter__(self) -> StreamingUpload:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        self.size += len(view)
        while view:
            taken = min(len(view), self._part_size - self._used)
            # Overwrites a reused buffer in place; extends a growing one (its length is _used).
            self._buffer[self._used: self._used + taken] = view[:taken]
            self._used += taken
            view = view[taken:]
            if self._used == self._part_size:
                self._send_part(self._buffer)
                self._buffer, self._used = self._next_buffer(), 0

    def _next_buffer(self) -> bytearray:
        if self._buffers <= self._max_in_flight:  # at most 1 + max_in_flight buffers, ever
            self._buffers += 1
            return bytearray()
        self._collect(oldest=True)
        return self._free.get_nowait()

    def _collect(self, oldest: bool = False) -> None:
        """Waits for the oldest in-flight part (or all): bounds memory and surfaces errors early."""
        while self._futures and (not oldest or len(self._futures) >= self._max_in_flight):
            self._parts.append(self._futures.pop(0).result())
            if oldest:
                return

    def _send_part(self, body: bytearray) -> None:
        if self._created is None:
            # CreateMultipartUpload runs on the pool, like the parts, so the caller goes on
            # reading while it is in flight; each part waits for its UploadId.
            self._pool = ThreadPoolExecutor(self._max_in_flight, thread_name_prefix="part")
            self._created = self._pool.submit(
                self._s3.create_multipart_upload, Bucket=self.bucket, Key=self.key, ContentType=self._content_type,
                Metadata=self._metadata, ChecksumAlgorithm=CHECKSUM)
        number = len(self._parts) + len(self._futures) + 1
        assert self._pool is not None
        self._futures.append(self._pool.submit(self._upload_part, number, body))

    def _upload_id(self) -> str:
        assert self._created is not None
        return self._created.result()["UploadId"]

    def _upload_part(self, number: int, body: bytearray) -> dict:
        try:
            response = self._s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id(),
                                            PartNumber=number, Body=body, ChecksumAlgorithm=CHECKSUM)
        finally:
            if len(body) == self._part_size:
                self._free.put(body)
        return {"PartNumber": number, "ETag": response["ETag"], f"Checksum{CHECKSUM}": response[f"Checksum{CHECKSUM}"]}

    def complete(self) -> StoredObject:
        """Stores the object and returns it."""
        del self._buffer[self._used:]  # the rest, in place: this buffer is not reused
        if self._created is None:
            response = self._s3.put_object(Bucket=self.bucket, Key=self.key, Body=self._buffer,
                                           ContentType=self._content_type, Metadata=self._metadata)
            return StoredObject(self.bucket, self.key, response.get("VersionId"), self.size)
        if self._buffer:
            self._send_part(self._buffer)
        self._collect()
        self._shutdown()
        response = self._s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id(),
            MultipartUpload={"Parts": sorted(self._parts, key=lambda p: p["PartNumber"])})
        self._created = None  # complete: nothing left to abort
        return StoredObject(self.bucket, self.key, response.get("VersionId"), self.size)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        self._shutdown()  # no part may land after the abort
        if self._created is not None:
            created, self._created = self._created, None
            # A failed (or never started) CreateMultipartUpload left nothing to abort.
            if not created.cancelled() and created.exception() is None:
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                UploadId=created.result()["UploadId"])


def put_tags(s3: Any, stored: StoredObject, tags: dict[str, str]) -> None:
    """Replaces the tag set of exactly the stored version."""
    version = {"VersionId": stored.version_id} if stored.version_id else {}
    s3.put_object_tagging(Bucket=stored.bucket, Key=stored.key, **version,
                          Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
