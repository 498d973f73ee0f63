"""One pass over a stored object: SHA-256, byte count and CSV record count, in flat memory.

Pure (no AWS): the metadata Lambda feeds it the S3 body's chunks. Records are counted as the
harvester counted them (`contract.records`), so a mismatch with the message means other bytes.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

from contract.records import RecordCounter

CHUNK_SIZE = 1 << 20  # 1 MiB: large reads keep the per-chunk Python overhead negligible


@dataclass(frozen=True)
class ObjectDigest:
    sha256: str  # lower-case hex
    size: int  # bytes
    rows: int  # CSV records after the header


def digest_chunks(chunks: Iterable[bytes]) -> ObjectDigest:
    """SHA-256 of each chunk runs on a helper thread (hashlib releases the GIL on large buffers)
    while this one counts its records and reads the next chunk: the hash, the costliest step,
    overlaps the rest. Updates stay in order (each waits for the one before); at most two
    chunks are held."""
    sha = hashlib.sha256()
    counter = RecordCounter()
    size = 0
    hashed: Future[None] | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="sha256") as hasher:
        for chunk in chunks:
            if hashed is not None:
                hashed.result()
            hashed = hasher.submit(sha.update, chunk)
            counter.feed(chunk)
            size += len(chunk)
        if hashed is not None:
            hashed.result()
    return ObjectDigest(sha256=sha.hexdigest(), size=size, rows=max(counter.records - 1, 0))
