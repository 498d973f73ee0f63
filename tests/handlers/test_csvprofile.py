"""handlers/csvprofile.py: the block fast paths and the csv path agree with the csv module."""

from __future__ import annotations

import contextlib
import csv
import io
import random
import sys
from typing import Any

import pytest

from handlers import csvprofile
from handlers.csvprofile import _clean_line, _clean_patterns, _sample, profile_csv
from tests.chunking import chunked


def reference(text: str):
    """The same figures computed the obvious way: csv module, whole rows kept."""
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    if not rows:
        return (), 0, 0, (), 0
    header, data = rows[0], rows[1:]
    empty = [sum(1 for r in data if i >= len(r) or r[i] == "") for i in range(len(header))]
    ragged = sum(1 for r in data if len(r) != len(header))
    return tuple(header), len(data), len(set(map(tuple, data))), tuple(empty), ragged


def figures(data: bytes, size: int):
    p = profile_csv(chunked(data, size))
    return p.header, p.rows, p.distinct_rows, p.empty_cells, p.ragged_rows


def test_profile_matches_the_csv_module_on_random_files_and_chunkings():
    rnd = random.Random(7)
    for _ in range(300):
        width = rnd.randrange(1, 5)
        plain = rnd.random() < 0.5  # quote-free files take the block fast path
        cells = ["a", "", "bb", "ñ", "7"] if plain else ["a", "", "c,d", 'q"r', "l\nm", "ñ"]
        rows = [[rnd.choice(cells) for _ in range(width + rnd.choice([0] * 20 + [-1, 1]))]
                for _ in range(rnd.randrange(0, 40))]
        rows = [r for r in rows if r and r != [""]]
        out = io.StringIO()
        csv.writer(out, lineterminator=rnd.choice(["\n", "\r\n"]),
                   quoting=rnd.choice([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])).writerows(
            [[f"h{i}" for i in range(width)]] + rows)
        text = out.getvalue()
        if rnd.random() < 0.3:
            text = text.rstrip("\r\n")
        for size in (1, 3, 17, 1 << 20):
            assert figures(text.encode(), size) == reference(text), (text, size)


@contextlib.contextmanager
def csv_module_only():
    """No record is clean quoted here: every quoted record goes through csv.reader."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvprofile, "_clean_patterns", lambda block: None)
        patch.setattr(csvprofile, "_clean_line", lambda line: False)
        yield


def soda_file(rnd: random.Random) -> str:
    """A random file written the SODA way (every field quoted), mostly clean quoted records with
    a few cells the fast path must refuse (escaped quotes, newlines), empty and ragged records."""
    width = rnd.randrange(1, 5)
    clean = ["a", "", "", "c,d", ",", ',"a",', "ñ", "é, ü", "7", "2024-01-31", "x\ry"]
    dirty = ['q"r', '""', "l\nm", "\nm", "l\n", '"', 'a","b']  # "l\n": a line that is a lone quote
    rows = [[rnd.choice(dirty if rnd.random() < 0.03 else clean)
             for _ in range(width + rnd.choice([0] * 20 + [-1, 1]))]
            for _ in range(rnd.randrange(0, 60))]
    rows += [rnd.choice(rows)] if rows and rnd.random() < 0.5 else []  # an exact duplicate
    rows = [r for r in rows if r and r != [""]] + ([[""]] if rnd.random() < 0.1 else [])
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator=rnd.choice(["\n"] * 4 + ["\r\n"])).writerows(
        [[f"h{i}" for i in range(width)]] + rows)
    text = out.getvalue()
    return text.rstrip("\r\n") if rnd.random() < 0.2 else text


def test_soda_fast_path_gives_the_csv_module_profile_on_random_files_and_chunkings():
    rnd = random.Random(4207)
    types = {"h0": "number", "h1": "calendar_date", "h2": "text", "h3": "number"}
    limits: dict[str, Any] = {"sample_head": 3, "sample_step": 2}  # samples taken across fast and csv records
    for _ in range(300):
        text = soda_file(rnd)
        data = text.encode()
        with csv_module_only():
            expected = profile_csv([data], types, **limits)
        assert figures(data, 1 << 20) == reference(text), text
        for size in (1, 2, 3, 7, 17, 64, 1 << 20):
            assert profile_csv(chunked(data, size), types, **limits) == expected, (text, size)


@contextlib.contextmanager
def tiny_memory_bounds():
    """Every bound of the profile's memory reached after a few rows: patterns folded into the
    totals, hashes routed and deduplicated."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csvprofile, "PATTERN_LIMIT", 2)
        patch.setattr(csvprofile, "PATTERN_BYTES", 16)
        patch.setattr(csvprofile._DistinctRecords, "DEDUPLICATE", 5)
        yield


def test_the_memory_bounds_do_not_change_the_profile():
    rnd = random.Random(25012)
    types = {"h0": "number", "h1": "calendar_date"}
    for _ in range(200):
        text = soda_file(rnd) if rnd.random() < 0.5 else soda_file(rnd).replace('"', "")
        data = text.encode()
        expected = profile_csv([data], types, sample_head=3, sample_step=2)
        with tiny_memory_bounds():
            for size in (1, 7, 1 << 20):
                assert profile_csv(chunked(data, size), types, sample_head=3, sample_step=2) == expected, (text, size)


def test_distinct_records_count_like_a_set():
    rnd = random.Random(1)
    records = [b"%d" % rnd.randrange(10**12) for _ in range(3000)]
    records += rnd.choices(records, k=2000)  # duplicates, some arriving after a deduplication
    with tiny_memory_bounds():
        distinct = csvprofile._DistinctRecords()
        for start in range(0, len(records), 7):
            distinct.add(records[start:start + 7])
        assert distinct.count() == len(set(records)) == 3000
        assert sum(map(len, distinct._parts)) < len(records)  # deduplicated along the way


def test_clean_quoted_lines_split_exactly_as_the_csv_module_reads_them():
    rnd = random.Random(25012)
    pieces = ['"', '""', '","', ",", "a", "é"]
    for _ in range(20_000):
        line = '"' + "".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 7))) + '"'
        if _clean_line(line.encode()):
            assert line[1:-1].split('","') == next(csv.reader([line])), line


def test_clean_quoted_line_counts_separators_inside_the_outer_quotes():
    # `","` at both ends uses the outer quotes: counted over the whole line, 6 == 2 x (2 + 1).
    assert next(csv.reader(['",""a"","'])) == [',"a",']
    assert not _clean_line(b'",""a"","')
    assert _clean_patterns(b'",""a"","\n') is None
    assert _clean_line(b'","') and _clean_line(b'"",""') and not _clean_line(b'"') and not _clean_line(b'"a\nb"')


def test_clean_quoted_block_accepts_only_blocks_of_clean_lines_and_patterns_match_the_csv_module():
    rnd = random.Random(9)
    pieces = ['"', '""', '","', ",", "a"]
    accepted = 0
    for _ in range(20_000):
        lines = ['"' + "".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 5))) + '"'
                 for _ in range(rnd.randrange(1, 4))]
        if rnd.random() < 0.05:
            lines.insert(rnd.randrange(len(lines) + 1), rnd.choice(['"', "", "a"]))
        patterns = _clean_patterns(("\n".join(lines) + "\n").encode())
        if patterns is None:
            continue
        accepted += 1
        assert all(_clean_line(line.encode()) for line in lines), lines
        rows = [next(csv.reader([line])) for line in lines]
        assert patterns == [b"".join(b"\0\0" if cell == "" else b'""' for cell in row) for row in rows], lines
    assert accepted > 1000


def test_bom_and_blank_lines_are_not_data():
    p = profile_csv([b"\xef\xbb\xbfa,b\n1,2\n\n3,4\n\n"])
    assert p.header == ("a", "b") and p.rows == 2 and p.blank_lines == 2 and p.utf8


def test_overlong_line_is_dropped_and_counted():
    data = b"a,b\n1,2\n" + b"x" * 5000 + b"\n3,4\n"
    for size in (100, 1 << 20):  # arriving in pieces or whole in one block
        p = profile_csv(chunked(data, size), line_limit=1000)
        assert (p.rows, p.dropped_records) == (2, 1), size


def test_unterminated_quote_at_the_end_is_still_read():
    p = profile_csv([b'a,b\n1,"open\nstill open'])
    assert p.rows == 1 and p.header == ("a", "b")


@pytest.mark.parametrize("data, columns", [(b'id,"nombre\n1,ana\n', 2), (b'"id,nombre\n', 1), (b'"id,nombre', 1)])
def test_first_record_left_open_by_a_quote_is_the_header_not_a_row(data, columns):
    # The csv module reads each as one record, the header (the quote runs to the end of the file).
    for size in (1, 3, 1 << 20):
        p = profile_csv(chunked(data, size))
        assert (p.columns, p.rows, p.dropped_records) == (columns, 0, 0), size


LONG_CELLS = {
    "quoted newlines": "\n".join(f"linea {i}" for i in range(200)),
    "escaped quotes on its lines": "\n".join(f'linea "{i}", sigue' for i in range(200)),
    "one long physical line": "x" * 2000 + "\nfin",
    "a long line then short ones": "x" * 1500 + "\n" + "\n".join(f'"{i}"' for i in range(50)),
    "a long closing line": "abre\n" + "x" * 2000,
}


def written(records: list[list[str]], quote_all: bool) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(records)
    return out.getvalue()


@pytest.mark.parametrize("cell", LONG_CELLS.values(), ids=LONG_CELLS.keys())
@pytest.mark.parametrize("where", [0, 3, 6])  # first data record, in the middle, last
def test_quoted_record_over_the_line_limit_is_dropped_whole(cell, where):
    header = ["id", "texto", "n"]
    rows = [[str(i), f"texto {i}", "" if i % 3 else str(i)] for i in range(6)]
    for quote_all in (False, True):
        kept = written([header, *rows], quote_all)
        data = written([header, *rows[:where], ["99", cell, "10"], *rows[where:]], quote_all).encode()
        for size in (1, 7, 64, 1 << 20):
            p = profile_csv(chunked(data, size), line_limit=1000)
            assert (p.header, p.rows, p.distinct_rows, p.empty_cells, p.ragged_rows) == reference(kept), size
            assert (p.dropped_records, p.blank_lines) == (1, 0), size


def test_type_sample_is_the_head_then_every_step_th_record():
    rows = list(range(1000))
    picked = _sample(rows[0:300], 0, 100, 50) + _sample(rows[300:1000], 300, 100, 50)
    assert picked == list(range(100)) + list(range(100, 1000, 50))


def test_divipola_codes_are_checked_on_the_sample_by_header_name_or_by_the_given_kinds():
    p = profile_csv([b"cod_dpto,cod_mpio,valor\n11,11001,1\n5,76111,2\n88,,3\n"])
    assert (p.code_checked, p.code_valid) == ((3, 2, 0), (3, 2, 0))
    assert (p.code_pairs, p.code_pairs_consistent) == (2, 1)  # 76111 is not in department 5

    named = profile_csv([b"departamento,ciudad_municipio\n11,11001\n"],
                        column_codes={"departamento": "department", "ciudad_municipio": "municipality"})
    assert (named.code_checked, named.code_pairs_consistent) == ((1, 1), 1)
    assert profile_csv([b"departamento,ciudad_municipio\n11,11001\n"]).code_checked == (0, 0)



def kept_pattern_bytes(profiler: csvprofile.CsvProfiler) -> int:
    """Memory held by the empty-cell patterns not yet folded into the totals."""
    return sum(sys.getsizeof(pattern) for patterns in (profiler._patterns, profiler._pairs, profiler._flags)
               for pattern in patterns)


def wide_sparse_profile(rows: int, quoted: bool) -> tuple[csvprofile.CsvProfile, int]:
    """Profiles 3,001-column records, nearly each with its own empty-cell pattern (segments of 100
    cells picked at random; quoted: every cell quoted, and an escaped quote in the first, so each
    record goes through csv.reader); returns the profile and the most pattern memory held."""
    rnd = random.Random(9)
    cell, empty = (b'"x"', b'""') if quoted else (b"x", b"")
    segments = [b",".join(rnd.choice((cell, empty)) for _ in range(100)) for _ in range(64)]
    first = b'"a""b",' if quoted else b"a,"
    profiler = csvprofile.CsvProfiler()
    profiler.feed(b",".join(b"c%d" % i for i in range(3001)) + b"\n")
    peak = 0
    for _ in range(rows // 200):  # chunks of 200 records, 0.9 MB
        profiler.feed(b"".join(first + b",".join(rnd.choice(segments) for _ in range(30)) + b"\n"
                               for _ in range(200)))
        peak = max(peak, kept_pattern_bytes(profiler))
    return profiler.close(), peak


def test_patterns_kept_are_bounded_in_bytes_not_only_in_number(monkeypatch):
    # 65,536 patterns of a 3,000-column file are some 300 MB: the number alone bounds nothing.
    monkeypatch.setattr(csvprofile, "PATTERN_BYTES", 2 << 20)
    profile, peak = wide_sparse_profile(3_000, quoted=False)  # 13 MB of distinct patterns
    assert profile.rows == 3_000
    assert peak < (2 << 20) + (2 << 20)  # the budget plus one chunk's


def test_a_parsed_records_pattern_keeps_a_byte_per_cell():
    # As a tuple of bools each cell took an 8-byte pointer: a 1,000-column sparse file through
    # csv.reader held 65,536 such tuples, 525 MiB, over the criteria Lambda's 512 MB.
    profile, peak = wide_sparse_profile(2_000, quoted=True)
    assert profile.rows == 2_000 and profile.ragged_rows == 0
    assert peak < 2_000 * (3_001 + 100)
