"""handlers/digest.py: one pass gives hashlib's SHA-256, the size and the record count."""

from __future__ import annotations

import hashlib

import pytest

from handlers.digest import digest_chunks
from tests.chunking import chunked


def test_digest_equals_hashlib_over_the_same_bytes():
    data = b"id,texto\n" + b"".join(b'%d,"linea\nuno"\n' % i for i in range(1000))
    digest = digest_chunks(chunked(data, 4096))
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.size == len(data)
    assert digest.rows == 1000  # 2001 newlines, 1000 of them inside quotes


@pytest.mark.parametrize("data, rows", [
    (b"", 0),
    (b"a,b\n", 0),  # header only
    (b"a,b", 0),  # header without newline
    (b"a,b\n1,2", 1),  # unterminated last record
    (b'a,b\n1,"x\r\ny"\r\n2,3\r\n', 2),  # CRLF and a quoted CRLF
    (b'a,b\n1,"say ""hi""\nthere"\n', 1),  # escaped quotes do not flip the state
])
def test_record_count_on_edge_cases(data, rows):
    for size in (1, 2, 5, 1 << 20):
        assert digest_chunks(chunked(data, size)).rows == rows
