"""Page validation and record counting, on bytes (no server)."""

from __future__ import annotations


import pytest

from container.csv_pages import LATER_SAMPLE_BYTES, SAMPLE_BYTES, InvalidPage, copy_page
from container.deadline import Deadline, DeadlineExceeded
from contract.records import count_records
from local.portal import encode_csv, generated_rows
from tests.chunking import chunked

HEADER = ["id", "municipio", "valor", "nota", "cat", "fecha"]


def page_bytes(rows: int, seed: int = 1) -> bytes:
    return encode_csv(HEADER, generated_rows(rows, seed))[0]


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_records_are_counted_not_lines_and_bytes_pass_through_unchanged(chunk_size):
    data = page_bytes(50)
    assert data.count(b"\n") > 51  # embedded newlines: more lines than records
    out = bytearray()

    page = copy_page(chunked(data, chunk_size), out.extend, expected_header=None)

    assert page.records == 50
    assert bytes(out) == data
    assert page.header == data[: data.index(b"\n") + 1]


def test_a_later_page_with_the_same_header_contributes_only_its_records():
    first, later = page_bytes(3), page_bytes(4, seed=2)
    header = first[: first.index(b"\n") + 1]
    out = bytearray()

    page = copy_page([later], out.extend, expected_header=header)

    assert page.records == 4 and bytes(out) == later[len(header):]


def test_a_header_only_page_has_no_records():
    data = page_bytes(0)
    assert copy_page([data], bytearray().extend, expected_header=None).records == 0


@pytest.mark.parametrize(("data", "reason"), [
    (b"<!DOCTYPE html><html><body>Error</body></html>", "HTML page"),
    (b"<html>\n<body>busy</body></html>\n", "HTML page"),
    (b"", "empty"),
    (b'"id","name"', "no complete CSV header"),
    (b'"id","name"\n"1","ok"\n"2","cut', "truncated"),
    (b'"id","name"\n"1","ok"\n"2","no newline"', "truncated"),
    (b'"id","name"\n"1","ok","extra"\n', "3 fields"),
    (b'"id","name"\n"1","\xff\xfe"\n', "not UTF-8"),
    (b'"id","name"\n"1","a"b"\n', "not valid CSV"),
])
def test_a_page_that_is_not_the_csv_asked_for_is_rejected_with_a_reason(data, reason):
    with pytest.raises(InvalidPage, match=reason):
        copy_page(chunked(data, 5) or [b""], bytearray().extend, expected_header=None)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 1 << 20])
@pytest.mark.parametrize(("bad", "reason"), [(b"\xff", "invalid start byte"),
                                             (b"\xc3(", "invalid continuation byte")])
def test_a_non_utf8_byte_is_reported_at_its_offset_in_the_page(chunk_size, bad, reason):
    data = '"id","name"\n"1","año"\n"2","ñ'.encode() + bad + b'"\n'
    at = data.index(bad)  # a sequence cut across chunks is reported where it starts
    with pytest.raises(InvalidPage, match=f"not UTF-8 at byte {at}: {reason}"):
        copy_page(chunked(data, chunk_size), bytearray().extend, expected_header=None)


def test_a_header_different_from_the_first_pages_is_rejected():
    with pytest.raises(InvalidPage, match="header differs"):
        copy_page([b'"id","other"\n"1","2"\n'], bytearray().extend, expected_header=b'"id","name"\n')


def test_the_deadline_stops_a_download_between_chunks():
    with pytest.raises(DeadlineExceeded):
        copy_page(chunked(page_bytes(20), 64), bytearray().extend, expected_header=None, deadline=Deadline(0.0))


def test_a_page_larger_than_the_sample_is_checked_on_its_first_records():
    data = page_bytes(200)
    header = data[: data.index(b"\n") + 1]
    bad_early = header + b'"1","x"\n' + data[len(header):] * 80  # > SAMPLE_BYTES, a 2-field record first
    assert len(bad_early) > SAMPLE_BYTES
    with pytest.raises(InvalidPage, match="2 fields"):
        copy_page(chunked(bad_early, 65536), bytearray().extend, expected_header=None)
    good = header + data[len(header):] * 80
    assert copy_page(chunked(good, 65536), bytearray().extend, expected_header=None).records == 200 * 80


def record_end(rows: bytes, at: int) -> int:
    """The end of the record that holds byte `at`."""
    while rows.count(b'"', 0, at) % 2 or rows[at - 1:at] != b"\n":
        at += 1
    return at


def records_then_a_bad_one_then_more(header: bytes, body: bytes, bad_after: int, total: int) -> bytes:
    """header + whole records of `body` up to about `bad_after` bytes, a 2-field record, then more
    whole records up to about `total` bytes."""
    rows = body * (total // len(body) + 2)
    cut = record_end(rows, bad_after)
    return header + rows[:cut] + b'"1","x"\n' + rows[cut: record_end(rows, total)]


def later_page(data: bytes) -> tuple[bytes, bytes]:
    header = data[: data.index(b"\n") + 1]
    return header, data[len(header):]


def test_a_later_page_with_a_wrong_field_count_in_its_first_records_is_rejected():
    header, body = later_page(page_bytes(200))
    bad = records_then_a_bad_one_then_more(header, body, LATER_SAMPLE_BYTES // 2, 4 * LATER_SAMPLE_BYTES)
    assert len(bad) > LATER_SAMPLE_BYTES
    with pytest.raises(InvalidPage, match="2 fields"):
        copy_page(chunked(bad, 256 * 1024), bytearray().extend, expected_header=header)


def test_the_first_page_is_checked_on_a_larger_sample_than_later_pages():
    header, body = later_page(page_bytes(200))
    # A wrong record between the two sample sizes, in a page larger than both.
    bad = records_then_a_bad_one_then_more(header, body, (LATER_SAMPLE_BYTES + SAMPLE_BYTES) // 2, 2 * SAMPLE_BYTES)
    with pytest.raises(InvalidPage, match="2 fields"):
        copy_page(chunked(bad, 256 * 1024), bytearray().extend, expected_header=None)
    # The documented trade-off: a later page's csv check stops at LATER_SAMPLE_BYTES (the quote-parity
    # scan, UTF-8 check and record count still cover every byte).
    copy_page(chunked(bad, 256 * 1024), bytearray().extend, expected_header=header)



def test_then_is_called_once_as_soon_as_the_page_has_delivered_when_records():
    data = page_bytes(50)
    header = data[: data.index(b"\n") + 1]
    out = bytearray()
    calls = []

    copy_page(chunked(data, 64), out.extend, expected_header=None, when_records=25,
              then=lambda: calls.append(len(out)))

    [delivered] = calls
    records = count_records(bytes(out[len(header): delivered]), False)[0]
    before_last_chunk = count_records(bytes(out[len(header): delivered - 64]), False)[0]
    assert before_last_chunk < 25 <= records  # the chunk that completed the 25th record
