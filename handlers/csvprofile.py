"""One pass over a CSV in bounded memory: the counts the quality criteria are computed from.

Pure (no AWS). `profile_csv(chunks, column_types)` reads bytes chunks (or a binary stream) once
and returns a `CsvProfile`: header, records, empty cells per column, distinct records, ragged
records, decoding problems, and type checks on a deterministic sample.

Memory stays bounded whatever the input:
- rows are never kept: duplicates are found with one 64-bit hash per record (Python's `hash` of
  the record's bytes, SipHash), kept as 8-byte array entries (`_DistinctRecords`: ~12 bytes
  per row, not the ~75 of a `set` of ints, which ran a 512 MB Lambda out of memory near 5
  million rows);
- a physical line longer than `line_limit` bytes (and a quoted record longer than that) is
  dropped and counted, never accumulated; the rest of the record is skipped up to its end (the
  first newline outside quotes, by quote parity), so a long quoted cell drops as ONE record
  instead of its tail being read as records;
- per-column counts are aggregated from each record's *empty-cell pattern* (which cells are
  empty): a dataset usually has few distinct patterns, and past `PATTERN_LIMIT` of them (a
  sparse dataset can have nearly one per row), or past `PATTERN_BYTES` of them (a wide one's
  are long), they are added to the per-column totals and forgotten.

Speed: the `csv` module alone needs ~4 s for the 1,000,000 x 23 benchmark file, because it
creates a Python string per cell; pandas' C parser takes about as long in total. So the two
common shapes are handled a block at a time in C (`bytes.count`/`replace`/`translate`), which
turn a block into one empty-cell pattern per record counted with `Counter`, each record hashed
whole (hand-written because the csv module is the measured bottleneck: on the SODA-quoted
benchmark file the evaluator took 9.6 s through `csv.reader`, 3.7 s this way; pandas 4.6 s):
- records without any double quote (the portal's full export quotes only cells that need it);
- *clean quoted* records, the SODA `/resource/{id}.csv` form: every cell quoted and no cell
  holding a quote or a newline (see `_clean_line`; for these `line[1:-1].split('","')` is
  exactly the csv module's parse).
Anything else (escaped quotes, quoted newlines, partly quoted records) goes through
`csv.reader`. Type checks, the only per-cell work, run on a documented sample: every record
of the first `sample_head`, then one record in `sample_step` (see docs/criteria.md).
"""

from __future__ import annotations

import codecs
import csv
import re
from array import array
from collections import Counter
from dataclasses import dataclass
from operator import not_
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping

from handlers.codes import DEPARTMENT, MUNICIPALITY, code_kind, conforms, consistent

CHUNK_SIZE = 1 << 20
LINE_LIMIT = 8 << 20  # bytes: longer lines are dropped (memory bound), Socrata WKT cells fit
SAMPLE_HEAD = 1_000
SAMPLE_STEP = 100
PATTERN_LIMIT = 1 << 16  # distinct empty-cell patterns kept before they are folded into the totals
# ... and their bytes: a pattern holds a byte or two per cell, so on a wide file the number alone
# bounds little (65,536 patterns of 3,000 columns are some 300 MB).
PATTERN_BYTES = 16 << 20
_BOM = codecs.BOM_UTF8

# Block transform of quote-free records (see `_pattern_lines`).
_CONTENT = bytes(b for b in range(256) if b not in b",\n\0")
_NUL_TO_E = bytes(ord("e") if b == 0 else b for b in range(256))
# Block transform of clean quoted records (see `_clean_patterns`).
_NOT_QUOTE = bytes(b for b in range(256) if b not in b'"\n\0')

# Syntactic checks per Socrata `dataTypeName` (docs/criteria.md, "Exactitud sintáctica").
_NUMBER = re.compile(r"[+-]?\$?\s?(?:\d+(?:[.,]\d+)*|[.,]\d+)(?:[eE][+-]?\d+)?\s?%?")
_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}/\d{1,2}/\d{4}(?: \d{1,2}:\d{2}(?::\d{2})?(?: ?[AaPp]\.? ?[Mm]\.?)?)?"
)
_CHECKBOX = re.compile(r"(?i)true|false|0|1|s[ií]|no|yes|y|n")
_URL = re.compile(r"(?i).*\bhttps?://\S+.*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_POINT = re.compile(r"(?i)POINT ?\(\s*-?\d+(?:\.\d+)? -?\d+(?:\.\d+)?\s*\)")

TYPE_CHECKS: dict[str, Callable[[str], object]] = {
    "number": _NUMBER.fullmatch,
    "money": _NUMBER.fullmatch,
    "percent": _NUMBER.fullmatch,
    "double": _NUMBER.fullmatch,
    "calendar_date": _DATE.fullmatch,
    "date": _DATE.fullmatch,
    "floating_timestamp": _DATE.fullmatch,
    "fixed_timestamp": _DATE.fullmatch,
    "checkbox": _CHECKBOX.fullmatch,
    "url": _URL.fullmatch,
    "email": _EMAIL.fullmatch,
    "point": _POINT.fullmatch,
}


@dataclass(frozen=True)
class CsvProfile:
    header: tuple[str, ...]  # empty when the file has no record at all
    rows: int  # data records parsed (header and blank lines excluded, ragged included)
    distinct_rows: int
    empty_cells: tuple[int, ...]  # per header column; a short record's missing cells are empty
    ragged_rows: int  # records whose cell count differs from the header's
    blank_lines: int
    dropped_records: int  # longer than the line limit or not parseable as CSV
    utf8: bool  # the whole object decodes as strict UTF-8
    invalid_utf8: int  # undecodable sequences (replaced by U+FFFD), 0 when utf8
    bytes_read: int
    sampled_rows: int  # records whose cells were type-checked
    type_checked: tuple[int, ...]  # per column: non-empty sampled cells checked (0: no check)
    type_valid: tuple[int, ...]  # per column: of those, cells matching the declared type
    duplicate_columns: tuple[str, ...]  # non-empty columns equal to an earlier one on the sample
    # DIVIPOLA codes on the sample (handlers.codes): per column, non-empty cells checked (0: not
    # a code column) and conforming; rows whose municipality and department codes both conform,
    # and of those, rows where the municipality lies in the department.
    code_checked: tuple[int, ...] = ()
    code_valid: tuple[int, ...] = ()
    code_pairs: int = 0
    code_pairs_consistent: int = 0

    @property
    def columns(self) -> int:
        return len(self.header)

    @property
    def duplicate_rows(self) -> int:
        return self.rows - self.distinct_rows


class CsvProfiler:
    """Incremental form of `profile_csv`: `feed(chunk)` any number of times, then `close()`."""

    def __init__(self, column_types: Mapping[str, str] | None = None, *, line_limit: int = LINE_LIMIT,
                 sample_head: int = SAMPLE_HEAD, sample_step: int = SAMPLE_STEP,
                 column_codes: Mapping[str, str] | None = None) -> None:
        self._types = {k.strip().casefold(): v for k, v in (column_types or {}).items()}
        # DIVIPOLA kind by header name, from the metadata's display names (SODA headers are field
        # names such as `departamento`); other headers are judged by their own name.
        self._code_names = {k.strip().casefold(): v for k, v in (column_codes or {}).items()}
        self._line_limit = line_limit
        self._sample_head = sample_head
        self._sample_step = max(sample_step, 1)
        # The csv module's own cap on a cell; records longer than line_limit never reach it.
        # (A process-wide setting: raising it is harmless for other readers.)
        if csv.field_size_limit() < line_limit:
            csv.field_size_limit(line_limit)
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._utf8 = True
        self._invalid = 0
        self._started = False
        self._carry = b""
        # Inside an overlong record: drop bytes up to its end, the first newline outside quotes.
        self._skipping = False
        self._skip_quoted = False  # the dropped record's quotes are open (odd count so far)
        self._pending: list[bytes] | None = None  # lines of a quoted record still open
        self._pending_size = 0
        self._header: tuple[str, ...] | None = None
        self._checks: list[tuple[int, Callable[[str], object]]] = []
        self._patterns: Counter[bytes] = Counter()  # empty-cell patterns of quote-free records
        self._pairs: Counter[bytes] = Counter()  # the same for clean quoted records
        self._flags: Counter[bytes] = Counter()  # the same for parsed records: 1 per empty cell, else 0
        self._pattern_bytes = 0  # bytes of the patterns counted since the last fold (repeats too)
        self._empty: list[int] = []  # per column: the empty cells of the patterns folded so far
        self._ragged = 0  # ... and their ragged records
        self._distinct = _DistinctRecords()
        self._rows = 0
        self._blank = 0
        self._dropped = 0
        self._bytes = 0
        self._sampled = 0
        self._checked: list[int] = []
        self._valid: list[int] = []
        self._fingerprints: list[int] = []
        self._first: list[str | None] = []  # column's first sampled value
        self._varies: list[bool] = []  # column has two different values on the sample
        self._codes: list[tuple[int, str]] = []  # (column, DIVIPOLA kind)
        self._pair: tuple[int, int] | None = None  # (department column, municipality column)
        self._code_checked: list[int] = []
        self._code_valid: list[int] = []
        self._code_pairs = 0
        self._code_pairs_consistent = 0

    # Input.
    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._bytes += len(chunk)
        self._check_utf8(chunk)
        if not self._started:
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
        data = self._carry + chunk if self._carry else chunk
        cut = data.rfind(b"\n") + 1
        lines, self._carry = data[:cut], data[cut:]
        while lines:  # an overflow inside the block hands the rest to the skip, and back
            lines = self._skip(lines) if self._skipping else self._block(lines)
        # At most PATTERN_LIMIT patterns (PATTERN_BYTES of them) plus one chunk's are ever kept.
        if (len(self._patterns) + len(self._pairs) + len(self._flags) > PATTERN_LIMIT
                or self._pattern_bytes > PATTERN_BYTES):
            self._fold_patterns()
        if self._skipping:  # the partial line belongs to the dropped record too
            self._skip(self._carry)
            self._carry = b""
        elif len(self._carry) > self._line_limit:
            self._drop_overlong()

    def close(self) -> CsvProfile:
        try:
            self._invalid += self._decoder.decode(b"", final=True).count("\ufffd")
        except UnicodeDecodeError:
            self._utf8 = False
            self._invalid += 1
        if self._carry and not self._skipping:
            self._block(self._carry + b"\n")
            self._carry = b""
        if self._pending is not None:  # a quote never closed: let the csv module judge it
            record, self._pending = b"\n".join(self._pending), None
            if self._header is None:  # it opened on the first line: the whole file is the header
                self._set_header(record)
            else:
                self._records([], [record])
        return self._profile()

    # Decoding: strict until the first error, then counting replacements.
    def _check_utf8(self, chunk: bytes) -> None:
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError:
            pending = self._decoder.getstate()[0] if self._utf8 else b""
            self._utf8 = False
            self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
            text = self._decoder.decode(pending + chunk)
        if not self._utf8:
            self._invalid += text.count("\ufffd")

    def _drop_overlong(self) -> None:
        """The partial line in `_carry` passed the limit: its record (pending lines included) is
        dropped, and skipped up to its end."""
        self._dropped += 1
        self._skipping = True
        self._skip_quoted = (self._pending is not None) ^ bool(self._carry.count(b'"') & 1)
        self._pending, self._carry = None, b""

    def _drop_line(self, open_quote: bool) -> None:
        """Drops the record ending on this (complete) line; with its quotes still open, the record
        goes on past the line, so the rest of it is skipped."""
        self._dropped += 1
        self._skipping = self._skip_quoted = open_quote

    def _skip(self, data: bytes) -> bytes:
        """Drops `data` up to the end of the skipped record (the first newline outside quotes, by
        quote parity, as the record split of `_block` reads it); returns what follows it, b""
        when the record goes on past `data`."""
        start = 0
        while True:
            if self._skip_quoted:  # newlines are inside the cell: only the next quote matters
                quote = data.find(b'"', start)
                if quote < 0:
                    return b""
                self._skip_quoted, start = False, quote + 1
                continue
            newline = data.find(b"\n", start)
            end = len(data) if newline < 0 else newline
            if data.count(b'"', start, end) & 1:  # a quote reopens on this line
                self._skip_quoted = True
                if newline < 0:
                    return b""
                start = newline + 1
            elif newline < 0:
                return b""
            else:
                self._skipping = False
                return data[newline + 1:]

    # Records.
    def _block(self, block: bytes) -> bytes:
        """Complete lines, each ending with a newline. Returns b"", or the lines after a quoted
        record that passed the limit, for `_skip` (then `_skipping` is set)."""
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        if self._header is None and self._pending is None:
            block = self._take_header(block)
            if not block:
                return b""
        if self._header is not None and self._pending is None and b"\0" not in block:
            if b'"' not in block:
                self._plain(block)
                return b""
            patterns = _clean_patterns(block)
            if patterns is not None:
                lines = block.split(b"\n")
                lines.pop()
                if len(block) <= self._line_limit or max(map(len, lines)) <= self._line_limit:
                    self._clean(lines, patterns)
                    return b""
        plain: list[bytes] = []
        quoted: list[bytes] = []
        lines = block[:-1].split(b"\n")
        for i, line in enumerate(lines):
            if self._pending is not None:
                self._pending.append(line)
                self._pending_size += len(line) + 1
                closes = line.count(b'"') & 1
                # An overlong line drops the record even when it closes it, as `_drop_overlong`
                # does when the line arrives in pieces: the profile must not depend on chunking.
                if len(line) > self._line_limit or (self._pending_size > self._line_limit and not closes):
                    self._pending = None
                    self._drop_line(open_quote=not closes)
                elif closes:
                    record, self._pending = b"\n".join(self._pending), None
                    self._record(record, quoted)
            elif len(line) > self._line_limit:
                self._drop_line(open_quote=bool(line.count(b'"') & 1))
            elif b'"' in line or b"\0" in line:  # NUL would collide with the empty-cell mark
                if line.count(b'"') & 1:
                    self._pending, self._pending_size = [line], len(line)
                else:
                    self._record(line, quoted)
            elif not line:
                self._blank += 1
            else:
                self._record(line, plain)
            if self._skipping:
                self._records(plain, quoted)
                return b"\n".join(lines[i + 1:]) + b"\n" if i + 1 < len(lines) else b""
        self._records(plain, quoted)
        return b""

    def _take_header(self, block: bytes) -> bytes:
        """Sets the header from the block's first line when it is a whole record; returns the rest
        (so the first block can take the fast paths too)."""
        end = block.find(b"\n")
        first = block[:end]
        if not first or len(first) > self._line_limit or first.count(b'"') & 1:
            return block  # blank, overlong or multi-line: the line loop handles it
        self._set_header(first)
        return block[end + 1:]

    def _record(self, record: bytes, batch: list[bytes]) -> None:
        if self._header is None:
            self._set_header(record)
        else:
            batch.append(record)

    def _records(self, plain: list[bytes], quoted: list[bytes]) -> None:
        if plain:
            self._plain(b"\n".join(plain) + b"\n")
        if quoted:
            self._quoted(quoted)

    def _set_header(self, record: bytes) -> None:
        try:
            header = next(csv.reader([record.decode("utf-8", "replace")]), [])
        except csv.Error:
            header = record.decode("utf-8", "replace").split(",")
        self._header = tuple(header)
        width = len(header)
        self._checks = [(i, TYPE_CHECKS[t]) for i, name in enumerate(header)
                        if (t := self._types.get(name.strip().casefold(), "")) in TYPE_CHECKS]
        self._checked = [0] * width
        self._valid = [0] * width
        self._empty = [0] * width
        self._fingerprints = [0] * width
        self._first = [None] * width
        self._varies = [False] * width
        self._codes = [(i, kind) for i, name in enumerate(header)
                       if (kind := self._code_names.get(name.strip().casefold()) or code_kind(name))]
        departments = [i for i, kind in self._codes if kind == DEPARTMENT]
        municipalities = [i for i, kind in self._codes if kind == MUNICIPALITY]
        # Pairs only when unambiguous: two of a kind (residence and occurrence, say) cannot be matched up.
        self._pair = (departments[0], municipalities[0]) if len(departments) == len(municipalities) == 1 else None
        self._code_checked = [0] * width
        self._code_valid = [0] * width

    def _plain(self, block: bytes) -> None:
        """Quote-free records with no blank line, one per newline-terminated line."""
        lines = block.split(b"\n")
        lines.pop()
        # A whole overlong line (rare: a block is about CHUNK_SIZE) is dropped, as `_drop_overlong`
        # drops one that arrives in pieces.
        overlong = len(block) > self._line_limit and max(map(len, lines)) > self._line_limit
        if overlong or b"" in lines:
            blank = lines.count(b"")
            kept = [line for line in lines if 0 < len(line) <= self._line_limit]
            self._blank += blank
            self._dropped += len(lines) - blank - len(kept)
            lines = kept
            if not lines:
                return
            block = b"\n".join(lines) + b"\n"
        base = self._rows
        self._rows += len(lines)
        self._distinct.add(lines)
        self._count_patterns(self._patterns, _pattern_lines(block))
        sample = _sample(lines, base, self._sample_head, self._sample_step)
        if sample:
            self._check([line.decode("utf-8", "replace").split(",") for line in sample])

    def _clean(self, lines: list[bytes], patterns: list[bytes]) -> None:
        """Clean quoted records (`_clean_line`) and their `_quoted_patterns`."""
        base = self._rows
        self._rows += len(lines)
        self._distinct.add(lines)
        self._count_patterns(self._pairs, patterns)
        sample = _sample(lines, base, self._sample_head, self._sample_step)
        if sample:
            self._check([_split_clean(line) for line in sample])

    def _quoted(self, records: list[bytes]) -> None:
        """Records with quotes, in file order: clean ones by the block transform, the rest by
        the csv module (the type-check sample is taken over both in file order)."""
        patterns = _clean_patterns(b"\n".join(records) + b"\n")
        if patterns is not None:  # never when a record spans lines (see `_clean_patterns`)
            self._clean(records, patterns)
            return
        clean = [_clean_line(record) for record in records]
        rows = self._parse([record for record, ok in zip(records, clean) if not ok])
        kept: list[tuple[bytes, list[str] | None]] = []  # (record, csv row or None when clean)
        for record, ok in zip(records, clean):
            if ok:
                kept.append((record, None))
            elif (row := next(rows)) is not None:
                kept.append((record, row))
        base = self._rows
        self._rows += len(kept)
        self._distinct.add([record for record, _ in kept])
        if any(clean):
            fast = [record for record, ok in zip(records, clean) if ok]
            self._count_patterns(self._pairs, _quoted_patterns(b"\n".join(fast) + b"\n"))
        # A byte per cell: as a tuple of bools each cell took an 8-byte pointer.
        self._count_patterns(self._flags, [bytes(map(not_, row)) for _, row in kept if row is not None])
        sample = _sample(kept, base, self._sample_head, self._sample_step)
        if sample:
            self._check([_split_clean(record) if row is None else row for record, row in sample])

    def _parse(self, records: list[bytes]) -> Iterator[list[str] | None]:
        """The csv module's row for each record, None (counted as dropped) where it fails."""
        texts = [record.decode("utf-8", "replace") for record in records]
        try:
            rows: list[list[str] | None] = list(csv.reader(texts))
            if len(rows) == len(texts):
                return iter(rows)
            # A record ending inside quotes (`a"b,"c`: the first quote is literal) made the reader
            # run on into the next records: read each record on its own instead.
        except csv.Error:  # rare: isolate the records the csv module rejects
            pass
        rows = []
        for text in texts:
            try:
                rows.append(next(csv.reader([text])))
            except csv.Error:
                rows.append(None)
                self._dropped += 1
        return iter(rows)

    def _check(self, rows: list[list[str]]) -> None:
        width = len(self._checked)
        rows = [row for row in rows if len(row) == width]
        if not rows or not width:
            return
        self._sampled += len(rows)
        columns = list(zip(*rows))
        for i, valid in self._checks:
            values = [v for v in columns[i] if v]
            self._checked[i] += len(values)
            self._valid[i] += sum(1 for v in values if valid(v))
        self._fingerprints = [hash((fp, column)) for fp, column in zip(self._fingerprints, columns)]
        self._first = [column[0] if first is None else first for first, column in zip(self._first, columns)]
        self._varies = [varies or any(v != first for v in column)
                        for varies, first, column in zip(self._varies, self._first, columns)]
        for i, kind in self._codes:
            values = [v for v in columns[i] if v]
            self._code_checked[i] += len(values)
            self._code_valid[i] += sum(1 for v in values if conforms(kind, v))
        if self._pair is not None:
            department, municipality = self._pair
            verdicts = [consistent(row[department], row[municipality]) for row in rows]
            self._code_pairs += sum(1 for v in verdicts if v is not None)
            self._code_pairs_consistent += sum(1 for v in verdicts if v)

    def _count_patterns(self, counter: Counter[bytes], patterns: list[bytes]) -> None:
        counter.update(patterns)
        self._pattern_bytes += sum(map(len, patterns))

    def _fold_patterns(self) -> None:
        """Adds the patterns counted so far to the per-column totals, and forgets them."""
        empty = self._empty
        for pattern, count in self._patterns.items():
            cells = pattern[1:-1].split(b",")
            self._ragged += _add_empty(empty, [cell == b"e" for cell in cells], count)
        for pattern, count in self._pairs.items():
            self._ragged += _add_empty(empty, [first == 0 for first in pattern[::2]], count)
        for flags, count in self._flags.items():
            self._ragged += _add_empty(empty, flags, count)
        self._patterns.clear()
        self._pairs.clear()
        self._flags.clear()
        self._pattern_bytes = 0

    # Result.
    def _profile(self) -> CsvProfile:
        header = self._header or ()
        self._fold_patterns()
        empty, ragged = self._empty, self._ragged
        seen: set[int] = set()
        duplicates = []
        if self._sampled:
            for name, fingerprint, varies in zip(header, self._fingerprints, self._varies):
                # A column of one value (all empty, or a flag always "No") repeats no other column's
                # information: emptiness is completitud's concern, a constant is not a copy.
                if not varies:
                    continue
                if fingerprint in seen:
                    duplicates.append(name)
                seen.add(fingerprint)
        return CsvProfile(
            header=header, rows=self._rows, distinct_rows=self._distinct.count(), empty_cells=tuple(empty),
            ragged_rows=ragged, blank_lines=self._blank, dropped_records=self._dropped,
            utf8=self._utf8, invalid_utf8=self._invalid, bytes_read=self._bytes,
            sampled_rows=self._sampled, type_checked=tuple(self._checked), type_valid=tuple(self._valid),
            duplicate_columns=tuple(duplicates), code_checked=tuple(self._code_checked),
            code_valid=tuple(self._code_valid), code_pairs=self._code_pairs,
            code_pairs_consistent=self._code_pairs_consistent,
        )


class _DistinctRecords:
    """Counts distinct records by their 64-bit hashes (Python's `hash` of the bytes), in ~12 bytes
    each (8 and the arrays' spare room).

    Hand-written because the standard library has no compact set, and the Lambda package has no
    numpy. Each hash is appended to one of `PARTS` arrays by its low bits; the count is the sum
    of each array's distinct entries, one array's set at a time. That costs a Python step per
    record (about 8 % of the profile's time: 3.2 s instead of 3.0 for the 1,000,000-row benchmark
    file) and saves ~65 bytes per record (6,400,000 rows: 119 MiB peak instead of 660). When the
    arrays pass `DEDUPLICATE` entries, each is deduplicated, so a file of many duplicates stays
    small too."""

    PARTS = 256
    DEDUPLICATE = 1 << 23  # entries (64 MiB) before the arrays are first deduplicated

    def __init__(self) -> None:
        self._parts = [array("q") for _ in range(self.PARTS)]
        self._appends = [part.append for part in self._parts]
        self._entries = 0
        self._limit = self.DEDUPLICATE

    def add(self, records: list[bytes]) -> None:
        appends, mask = self._appends, self.PARTS - 1
        for value in map(hash, records):
            appends[value & mask](value)
        self._entries += len(records)
        if self._entries > self._limit:
            # One array at a time, in place: the peak is the arrays plus one array's set.
            for i, part in enumerate(self._parts):
                self._parts[i] = array("q", set(part))
                self._appends[i] = self._parts[i].append
            del part
            self._entries = sum(map(len, self._parts))
            self._limit = max(self._limit, 2 * self._entries)

    def count(self) -> int:
        return sum(len(set(part)) for part in self._parts)


def _pattern_lines(block: bytes) -> list[bytes]:
    """One pattern per record of a quote-free, NUL-free block: `,` per separator, `e` per empty
    cell, between a leading and a trailing `,`.

    `a,,b\n,c,\n` gives `[b",,e,,", b",e,,e,"]`. Each newline gets a comma on both sides (and
    the block one in front), so an empty first or last cell is two adjacent commas like any
    other; every empty cell is then marked with NUL between its two commas (two `replace` passes
    mark a run of any length: the first leaves every other pair unmarked, and the second is
    skipped when no pair is left), and one `translate` deletes the content and turns NUL into `e`.
    """
    marked = (b"," + block.replace(b"\n", b",\n,")).replace(b",,", b",\0,")
    if b",," in marked:
        marked = marked.replace(b",,", b",\0,")
    return marked.translate(_NUL_TO_E, _CONTENT).split(b"\n")[:-1]


def _clean_line(line: bytes) -> bool:
    """A *clean quoted* record: every cell quoted, no cell holding a quote, newline or NUL.

    Such a line is `"c0","c1",...,"cn"`: it starts and ends with `"` and its quotes number
    2 x (n + 1) where n counts `","` *inside* `line[1:-1]`. That count is necessary, and also
    sufficient: splitting `line[1:-1]` at its n separators leaves n + 1 pieces whose quotes add
    to the rest, so the pieces hold none, and `line[1:-1].split('","')` is then exactly what the
    csv module reads (an escaped quote `""` inside a cell or an unquoted cell breaks the count).
    Counting over the whole line would be wrong: `",""a"","` has 6 quotes and two `","` that use
    its first and last quote, yet it is one cell `,"a",`.
    """
    return (len(line) > 1 and line[0] == 34 and line[-1] == 34  # 34: '"'
            and line.count(b'"') == 2 * line.count(b'","', 1, -1) + 2
            and b"\n" not in line and b"\0" not in line)


def _clean_patterns(block: bytes) -> list[bytes] | None:
    """`_quoted_patterns(block)` when every line of the block (complete lines, each ending with a
    newline) is clean quoted (`_clean_line`), else None; a constant number of passes in C.

    Every line starts and ends with `"` and is longer than one byte (each inner newline sits in
    `"\\n"`, non-overlapping only when no line is a lone `"`). No line starts or ends with `","`,
    so the block's count of `","` is the sum of the counts inside each `line[1:-1]`. Each such
    line has at least 2 x (its count + 1) quotes (see `_clean_line`), so the block's total
    equalling the sum of those bounds means every line meets its bound exactly. (A record spanning
    lines never passes: its first line has an odd number of quotes.) The quote total is read off
    the patterns, which keep every quote (`""` as two NULs) and newline.
    """
    lines = block.count(b"\n")
    if not (block[:1] == b'"' and block[-2:] == b'"\n' and block[:2] != b'"\n' and block[-3:] != b'\n"\n'
            and block.count(b'"\n"') == lines - 1
            and not block.startswith(b'","') and b'\n","' not in block and b'","\n' not in block
            and b"\0" not in block):
        return None
    separators = block.count(b'","')
    patterns = _quoted_patterns(block)
    if sum(map(len, patterns)) != 2 * (separators + lines):
        return None
    return patterns


def _quoted_patterns(block: bytes) -> list[bytes]:
    """One pattern per line of a block of clean quoted records: two bytes per cell, `""` for a
    value and two NULs for an empty cell.

    `"a",""\\n"",","\\n` gives `[b'""\\0\\0', b'\\0\\0""']`. In a clean record the only adjacent
    quotes are the two of an empty cell (those of two cells have a comma between them), so `""`
    becomes two NULs; `translate` then deletes everything but quotes, NULs and newlines, commas
    in cells included. (Fixed width: no pass is spent joining cells with separators.)
    """
    return block.replace(b'""', b"\0\0").translate(None, _NOT_QUOTE).split(b"\n")[:-1]


def _split_clean(record: bytes) -> list[str]:
    """The cells of a clean quoted record: exactly the csv module's parse, for less."""
    return record.decode("utf-8", "replace")[1:-1].split('","')


def _add_empty(empty: list[int], flags: Iterable[int], count: int) -> int:
    """Adds one record pattern's empty cells to the per-column totals; returns the ragged count."""
    flags = list(flags)
    width = len(empty)
    for i, is_empty in enumerate(flags[:width]):
        if is_empty:
            empty[i] += count
    if len(flags) < width:
        for i in range(len(flags), width):
            empty[i] += count
    return count if len(flags) != width else 0


def _sample(rows: list, base: int, head: int, step: int) -> list:
    """The records of a batch (global index `base`...) that fall in the type-check sample."""
    in_head = max(0, min(len(rows), head - base))
    start = max(base + in_head, head)
    first = start + (-start) % step - base
    return rows[:in_head] + rows[first::step]


def iter_chunks(source: Iterable[bytes] | BinaryIO, size: int = CHUNK_SIZE) -> Iterable[bytes]:
    """Bytes chunks from either an iterable of chunks or a binary stream (file, S3 body)."""
    read = getattr(source, "read", None)
    if callable(read):
        return iter(lambda: read(size), b"")
    return source  # type: ignore[return-value]


def profile_csv(source: Iterable[bytes] | BinaryIO, column_types: Mapping[str, str] | None = None,
                column_codes: Mapping[str, str] | None = None, **limits: int) -> CsvProfile:
    """Profile a CSV from bytes chunks or a binary stream; `column_types` maps header names to
    Socrata `dataTypeName`s (others are not type-checked), `column_codes` to DIVIPOLA kinds."""
    profiler = CsvProfiler(column_types, column_codes=column_codes, **limits)
    for chunk in iter_chunks(source):
        profiler.feed(chunk)
    return profiler.close()
