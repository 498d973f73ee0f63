"""One pass over a stored object: SHA-256, byte count and CSV record count, in flat memory.

Pure (no AWS): the metadata Lambda feeds it the S3 body's chunks. Records are counted without
parsing fields: a newline ends a record only outside double quotes, so a quoted field holding
newlines counts once. The quote state is carried from chunk to chunk.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable

CHUNK_SIZE = 1 << 20  # 1 MiB: large reads keep the per-chunk Python overhead negligible

# Keeps only quotes and newlines; every other byte is deleted (see `_count_records`).
_NOT_QUOTE_OR_NEWLINE = bytes(b for b in range(256) if b not in b'"\n')


@dataclass(frozen=True)
class ObjectDigest:
    sha256: str  # lower-case hex
    size: int  # bytes
    rows: int  # CSV records after the header


class RecordCounter:
    """Counts CSV records (RFC 4180 quoting) across chunks; blank lines count as records.

    Hand-written instead of `csv.reader` because it is ~20x faster and needs no decoding: the
    csv module would cost more than the hashing itself (see bench/hashing.py). It only needs
    the parity of quotes before each newline, so each chunk is reduced in C to its quotes and
    newlines, adjacent quote pairs (which leave the parity unchanged, e.g. escaped `""`) are
    dropped, and only the few newlines left between an odd quote and the next are inside a field.
    """

    def __init__(self) -> None:
        self.newlines = 0
        self._in_quotes = False
        self._last_byte = b"\n"  # an empty object has no unterminated last record

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._last_byte = chunk[-1:]
        if not self._in_quotes and b'"' not in chunk:
            self.newlines += chunk.count(b"\n")
            return
        marks = chunk.translate(None, _NOT_QUOTE_OR_NEWLINE)
        marks = marks.replace(b'""', b"")
        # After dropping pairs, quotes alternate open/close: segments at even positions of the
        # split lie outside quotes (odd ones, when the chunk started inside a quoted field).
        segments = marks.split(b'"')
        outside = segments[1::2] if self._in_quotes else segments[0::2]
        self.newlines += sum(map(len, outside))
        if len(segments) % 2 == 0:  # an odd number of quotes flips the state
            self._in_quotes = not self._in_quotes

    @property
    def records(self) -> int:
        """Records including the header; an unterminated last line is a record too."""
        return self.newlines + (self._last_byte != b"\n")


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
