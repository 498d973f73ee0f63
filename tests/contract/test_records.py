"""contract.records: the one record count of the pipeline, checked against the csv module."""

from __future__ import annotations

import csv
import io
import random

import pytest

from container.csv_pages import copy_page
from contract.records import RecordCounter, count_records, count_records_bytes, count_records_numpy
from handlers.digest import digest_chunks
from local.portal import encode_csv, generated_rows
from tests.chunking import chunked

TRICKY = ['"', '""', "", "\n", '"\n"', 'a""\n', "\n\n", '"",""', "x", "ñ"]
COUNTS = [count_records, count_records_bytes, count_records_numpy]  # the dispatcher and both ways


def scan(chunks: list[bytes], count=count_records) -> tuple[int, bool]:
    total, in_quotes = 0, False
    for chunk in chunks:
        counted, in_quotes = count(chunk, in_quotes)
        total += counted
    return total, in_quotes


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("chunk_size", [1, 3, 64, 1 << 20])
def test_the_scan_counts_what_the_csv_module_counts_on_soda_pages(chunk_size, count):
    data = encode_csv(["id", "nota"], ([row[0], row[3]] for row in generated_rows(300, seed=9)))[0]
    expected = sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline="")))
    assert data.count(b"\n") > expected  # quoted newlines: more lines than records
    assert scan(chunked(data, chunk_size), count) == (expected, False)


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("chunk_size", [1, 2, 5, 1 << 20])
def test_the_scan_counts_right_around_escaped_quotes_empty_fields_and_quoted_newlines(chunk_size, count):
    rows = [[a, b, "end"] for a in TRICKY for b in TRICKY]
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    assert scan(chunked(buffer.getvalue().encode(), chunk_size), count) == (len(rows), False)


@pytest.mark.parametrize("count", COUNTS)
def test_a_chunk_without_quotes_inside_a_quoted_field_counts_no_records(count):
    # The middle chunk has no quote at all, but it lies inside the field the first one opened.
    assert scan([b'1,"a\n', b"b\nc\nd", b'"\n2,x\n'], count) == (2, False)


@pytest.mark.parametrize("count", COUNTS)
def test_the_state_at_the_end_says_whether_a_quoted_field_is_still_open(count):
    assert count(b'1,"open\n', False) == (0, True)
    assert count(b'still open\n', True) == (0, True)
    assert count(b'closed"\n', True) == (1, False)
    assert count(b"", True) == (0, True)


def test_both_ways_agree_on_every_offset_of_random_quotes_and_newlines():
    """The numpy way works 64 bytes to a word: runs of quotes and newlines straddling word edges,
    chunks of odd sizes, and entering inside quotes."""
    rnd = random.Random(25012)
    data = bytes(rnd.choice(b'""\n\nab,') for _ in range(300_000))
    for size in (63, 64, 65, 1000, 65_536, 100_003):
        assert scan(chunked(data, size), count_records_numpy) == scan(chunked(data, size), count_records_bytes)
    for start in range(130):
        for in_quotes in (False, True):
            chunk = data[start:start + 70_000]
            assert count_records_numpy(chunk, in_quotes) == count_records_bytes(chunk, in_quotes)


def test_large_quoted_chunks_are_counted_with_numpy_small_ones_with_bytes(monkeypatch):
    calls = []
    monkeypatch.setattr("contract.records.count_records_numpy", lambda c, q: calls.append(("numpy", len(c))))
    monkeypatch.setattr("contract.records.count_records_bytes", lambda c, q: calls.append(("bytes", len(c))))
    count_records(b'"a"\n' * 16_384, False)
    count_records(b'"a"\n' * 100, False)
    assert calls == [("numpy", 65_536), ("bytes", 400)]


def test_the_record_counter_matches_the_csv_module_on_random_files_and_chunkings():
    rnd = random.Random(4207)
    cells = ["a", "", 'x"y', "l\nm", "p,q", '""', "\r\n", "ñ"]
    for _ in range(200):
        rows = [[rnd.choice(cells) for _ in range(3)] for _ in range(rnd.randrange(0, 15))]
        out = io.StringIO()
        csv.writer(out, lineterminator=rnd.choice(["\n", "\r\n"])).writerows(rows)
        data = out.getvalue().encode()
        expected = len(list(csv.reader(io.StringIO(data.decode(), newline=""))))
        for size in (1, 3, 7, 64):
            counter = RecordCounter()
            for chunk in chunked(data, size):
                counter.feed(chunk)
            assert counter.records == expected, (data, size)


@pytest.mark.parametrize("seed", range(5))
def test_the_harvester_and_the_metadata_lambda_count_the_same_rows(seed):
    """The metadata Lambda warns when its own count of the object differs from the message's
    `rows`: for any page the harvester stores, the two counts agree."""
    rnd = random.Random(seed)
    rows = [[str(i), rnd.choice(TRICKY), rnd.choice(TRICKY)] for i in range(500)]
    data = encode_csv(["id", "a", "b"], rows)[0]
    stored = bytearray()

    page = copy_page(chunked(data, rnd.randrange(1, 4096)), stored.extend, expected_header=None)

    assert bytes(stored) == data
    assert page.records == digest_chunks(chunked(bytes(stored), rnd.randrange(1, 4096))).rows == len(rows)
