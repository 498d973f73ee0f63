"""The read-ahead iterator: order, bounded read-ahead, errors in place, early close."""

from __future__ import annotations

import threading
import time

import pytest

from container.deadline import Deadline, DeadlineExceeded
from container.prefetch import prefetched


def test_chunks_come_out_in_order():
    assert list(prefetched(iter([b"a", b"b", b"c"] * 100), depth=2)) == [b"a", b"b", b"c"] * 100


def test_a_reader_error_is_raised_after_the_chunks_before_it():
    def source():
        yield b"1"
        yield b"2"
        raise ConnectionError("cut")

    got = []
    with pytest.raises(ConnectionError, match="cut"):
        for chunk in prefetched(source()):
            got.append(chunk)
    assert got == [b"1", b"2"]


def test_closing_early_stops_the_reader_within_its_read_ahead():
    read = []

    def source():
        for i in range(1000):
            read.append(i)
            yield bytes([i % 256])

    before = set(threading.enumerate())
    stream = prefetched(source(), depth=3)
    next(stream)
    stream.close()
    assert len(read) <= 1 + 3 + 2  # the consumed one, the queue, one blocked in put, one in hand
    # ... and has stopped: not blocked for ever on the full queue, nor still reading.
    assert not [t for t in set(threading.enumerate()) - before if t.name == "prefetch"]


def test_a_chunk_that_has_not_arrived_by_the_deadline_raises_after_the_chunks_before_it():
    stalled = threading.Event()

    def source():
        yield b"1"
        stalled.wait(30)  # a socket that stopped delivering (released when the test ends)
        yield b"late"

    got = []
    try:
        with pytest.raises(DeadlineExceeded, match="deadline"):
            for chunk in prefetched(source(), deadline=Deadline(time.monotonic() + 0.3)):
                got.append(chunk)
    finally:
        stalled.set()
    assert got == [b"1"]


def test_unblock_ends_the_reader_and_the_reader_has_ended_when_the_deadline_is_raised():
    before = set(threading.enumerate())
    socket_shut = threading.Event()

    def source():
        yield b"1"
        socket_shut.wait(30)  # a read blocked on the socket; shutting the socket ends it
        raise ConnectionError("socket shut")

    stream = prefetched(source(), deadline=Deadline(time.monotonic() + 0.3), unblock=socket_shut.set)
    try:
        assert next(stream) == b"1"
        with pytest.raises(DeadlineExceeded):
            next(stream)
        # The caller closes the response next: the reader must not be releasing it at the same time.
        assert not [t for t in set(threading.enumerate()) - before if t.name == "prefetch"]
    finally:
        socket_shut.set()


def test_closing_early_unblocks_a_reader_still_reading_and_it_has_ended_when_close_returns():
    # An error downstream (an invalid page, the deadline seen between chunks) closes the stream
    # while the reader is blocked on the socket; the response is closed right after.
    before = set(threading.enumerate())
    socket_shut = threading.Event()

    def source():
        yield b"1"
        socket_shut.wait(30)
        raise ConnectionError("socket shut")

    stream = prefetched(source(), deadline=Deadline(time.monotonic() + 30), unblock=socket_shut.set)
    try:
        assert next(stream) == b"1"
        stream.close()
        assert socket_shut.is_set()
        assert not [t for t in set(threading.enumerate()) - before if t.name == "prefetch"]
    finally:
        socket_shut.set()
