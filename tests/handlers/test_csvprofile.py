"""handlers/csvprofile.py: the block fast path and the csv path agree with the csv module."""

from __future__ import annotations

import csv
import io
import random

from handlers.csvprofile import _sample, profile_csv


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
    p = profile_csv([data[i:i + size] for i in range(0, len(data), size)])
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


def test_bom_and_blank_lines_are_not_data():
    p = profile_csv([b"\xef\xbb\xbfa,b\n1,2\n\n3,4\n\n"])
    assert p.header == ("a", "b") and p.rows == 2 and p.blank_lines == 2 and p.utf8


def test_overlong_line_is_dropped_and_counted():
    data = b"a,b\n1,2\n" + b"x" * 5000 + b"\n3,4\n"
    p = profile_csv([data[i:i + 100] for i in range(0, len(data), 100)], line_limit=1000)
    assert (p.rows, p.dropped_records) == (2, 1)


def test_unterminated_quote_at_the_end_is_still_read():
    p = profile_csv([b'a,b\n1,"open\nstill open'])
    assert p.rows == 1 and p.header == ("a", "b")


def test_type_sample_is_the_head_then_every_step_th_record():
    rows = list(range(1000))
    picked = _sample(rows[0:300], 0, 100, 50) + _sample(rows[300:1000], 300, 100, 50)
    assert picked == list(range(100)) + list(range(100, 1000, 50))
