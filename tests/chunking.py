"""Bytes cut into chunks, as a streamed body delivers them (the tests of every streaming reader)."""

from __future__ import annotations


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i: i + size] for i in range(0, len(data), size)]
