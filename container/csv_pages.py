"""Validates and copies one CSV page of a dataset, streaming: each chunk goes on to the sink as it
arrives, and is checked on the way.

Checks per page: not an HTML page; a header equal to the first page's; UTF-8 throughout; RFC 4180
quoting that closes; a complete last record (a body cut short either fails urllib3's
Content-Length or chunked-encoding check or ends inside quotes or without its newline; a page
that declares neither a length nor chunks is refused before it is read, in
`PortalClient.open_csv_page`, since a cut right after a record would look complete). Records are
counted, not lines: a quoted field may hold newlines.

Why not the csv module over everything: it parses at ~55 MB/s here, slower than the network and S3
baseline the job is held to, and this job's CPU is what Fargate bills. Records are counted with
the pipeline's quote-parity scan instead (`contract.records`, on numpy in the image; the metadata
Lambda counts them again with it). The csv module (strict) still parses the header and the first
records of every page, checking that each has the header's number of fields and that it counts as
many records as the scan: the first 256 KiB of the first page (`SAMPLE_BYTES`), the first 64 KiB
of each later page (`LATER_SAMPLE_BYTES`: the header and the column layout were already proven on
the first page, and the csv module is the slowest step of a page).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from itertools import chain
from typing import Callable, Iterable, Iterator

from container.deadline import Deadline
from contract.records import count_records

Sink = Callable[[bytes], None]
HTML_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")
SAMPLE_BYTES = 256 * 1024  # strict csv check of the first page
LATER_SAMPLE_BYTES = 64 * 1024  # ... and of every later page


class InvalidPage(Exception):
    """The page is not the CSV that was asked for; the message says why."""


@dataclass(frozen=True)
class Page:
    header: bytes  # the header line, newline included
    records: int  # records after the header


def complete_prefix(data: bytes, tries: int = 64) -> bytes:
    """The longest prefix of `data` ending with a newline outside quotes (b"" if none is found)."""
    end = len(data)
    for _ in range(tries):
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            break
        if data.count(b'"', 0, end + 1) % 2 == 0:
            return data[: end + 1]
    return b""


def split_header(chunks: Iterator[bytes]) -> tuple[bytes, bytes]:
    """Reads chunks up to the end of the first line: (header line, bytes after it)."""
    buffered = bytearray()
    for chunk in chunks:
        buffered += chunk
        end = buffered.find(b"\n")
        if end >= 0:
            return bytes(buffered[: end + 1]), bytes(buffered[end + 1:])
        if len(buffered) > 1024 * 1024:
            break
    if buffered.lstrip()[:9].lower().startswith(HTML_STARTS):
        raise InvalidPage("the portal answered an HTML page instead of CSV")
    raise InvalidPage("the answer has no complete CSV header line" if buffered else "the answer is empty")


def parse_header(line: bytes) -> list[str]:
    if line.lstrip()[:9].lower().startswith(HTML_STARTS):
        raise InvalidPage("the portal answered an HTML page instead of CSV")
    try:
        records = list(csv.reader(io.StringIO(line.decode("utf-8"), newline=""), strict=True))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InvalidPage(f"the header is not a CSV line: {error}") from None
    if len(records) != 1 or not records[0] or not all(name.strip() for name in records[0]):
        raise InvalidPage("the header is not a CSV line of column names")
    return records[0]


def check_sample(sample: bytes, fields: int) -> None:
    """Strict csv parse of whole records: each has `fields` fields, and as many as the scan counts."""
    try:
        lengths = list(map(len, csv.reader(io.StringIO(sample.decode("utf-8"), newline=""), strict=True)))
    except UnicodeDecodeError as error:
        raise InvalidPage(f"the page is not UTF-8: {error.reason}") from None
    except csv.Error as error:
        if "unexpected end of data" in str(error):  # the body ended inside a quoted field
            raise InvalidPage("the page is truncated: its last record is incomplete") from None
        raise InvalidPage(f"the page is not valid CSV: {error}") from None
    for number, length in enumerate(lengths, 1):
        if length != fields:
            raise InvalidPage(f"record {number} of the page has {length} fields, the header {fields}")
    if len(lengths) != count_records(sample, False)[0]:
        raise InvalidPage("the page is not RFC 4180 CSV (quotes inside unquoted fields)")


def copy_page(chunks: Iterable[bytes], sink: Sink, *, expected_header: bytes | None,
              deadline: Deadline | None = None, when_records: int = 0,
              then: Callable[[], None] | None = None) -> Page:
    """Copies one page to `sink`: the header only when `expected_header` is None (first page),
    then every record. Raises InvalidPage or DeadlineExceeded; the caller aborts the upload.
    `then()`, if given, is called once, as soon as the page has delivered `when_records` records.

    The csv module checks the first `SAMPLE_BYTES` of the first page, `LATER_SAMPLE_BYTES` of a later one."""
    iterator = iter(chunks)
    header, rest = split_header(iterator)
    fields = parse_header(header)
    if expected_header is None:
        sink(header)
    elif header != expected_header:
        raise InvalidPage(f"this page's header differs from the first page's: {header[:200]!r}")

    decoder = codecs.getincrementaldecoder("utf-8")()
    records, in_quotes, last = 0, False, b""
    sample, sampled = bytearray(), False
    sample_bytes = SAMPLE_BYTES if expected_header is None else LATER_SAMPLE_BYTES
    received = len(header)  # bytes of the page before `chunk`
    for chunk in chain((rest,), iterator):
        if chunk:
            sink(chunk)
            try:
                decoder.decode(chunk)  # validates; the text itself is not needed
            except UnicodeDecodeError as error:
                # error.start counts from the undecoded tail of the chunk before, if any
                at = received - len(decoder.getstate()[0]) + error.start
                raise InvalidPage(f"the page is not UTF-8 at byte {at}: {error.reason}") from None
            counted, in_quotes = count_records(chunk, in_quotes)
            records += counted
            received += len(chunk)
            last = chunk[-1:]
            if then is not None and records >= when_records:
                call, then = then, None
                call()
            if not sampled:
                sample += chunk[: sample_bytes - len(sample)]  # exactly the sample, not whole chunks
                if len(sample) >= sample_bytes:
                    check_sample(complete_prefix(bytes(sample)), len(fields))
                    sample, sampled = bytearray(), True
        if deadline is not None and deadline.passed():
            raise deadline.exceeded("while downloading")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InvalidPage("the page is truncated: it ends inside a UTF-8 character") from None
    if last and last != b"\n":
        raise InvalidPage("the page is truncated: its last record is incomplete")
    if not sampled and sample:  # a short page: the csv module checks all of it
        check_sample(bytes(sample), len(fields))
    if in_quotes:
        raise InvalidPage("the page is truncated: its last record is incomplete")
    return Page(header, records)
