"""contract.records: the one record count of the pipeline, checked against the csv module."""

from __future__ import annotations

import csv
import io
import random

import pytest

from container.csv_pages import copy_page
from contract.records import RecordCounter, count_records
from handlers.digest import digest_chunks
from local.portal import encode_csv, generated_rows
from tests.chunking import chunked

TRICKY = ['"', '""', "", "\n", '"\n"', 'a""\n', "\n\n", '"",""', "x", "ñ"]


def scan(chunks: list[bytes]) -> tuple[int, bool]:
    total, in_quotes = 0, False
    for chunk in chunks:
        counted, in_quotes = count_records(chunk, in_quotes)
        total += counted
    return total, in_quotes


@pytest.mark.parametrize("chunk_size", [1, 3, 64, 1 << 20])
def test_the_scan_counts_what_the_csv_module_counts_on_soda_pages(chunk_size):
    data = encode_csv(["id", "nota"], ([row[0], row[3]] for row in generated_rows(300, seed=9)))[0]
    expected = sum(1 for _ in csv.reader(io.StringIO(data.decode(), newline="")))
    assert data.count(b"\n") > expected  # quoted newlines: more lines than records
    assert scan(chunked(data, chunk_size)) == (expected, False)


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 1 << 20])
def test_the_scan_counts_right_around_escaped_quotes_empty_fields_and_quoted_newlines(chunk_size):
    rows = [[a, b, "end"] for a in TRICKY for b in TRICKY]
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    assert scan(chunked(buffer.getvalue().encode(), chunk_size)) == (len(rows), False)


def test_a_chunk_without_quotes_inside_a_quoted_field_counts_no_records():
    # The middle chunk has no quote at all, but it lies inside the field the first one opened.
    assert scan([b'1,"a\n', b"b\nc\nd", b'"\n2,x\n']) == (2, False)


def test_the_state_at_the_end_says_whether_a_quoted_field_is_still_open():
    assert count_records(b'1,"open\n', False) == (0, True)
    assert count_records(b'still open\n', True) == (0, True)
    assert count_records(b'closed"\n', True) == (1, False)


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
