"""Read-ahead for a streamed download: a thread pulls the next chunks off the socket while the
caller checks and uploads the current one (socket reads release the GIL, so they overlap).

Hand-written because neither requests nor urllib3 reads ahead; it is a bounded queue and a thread.
It also bounds the wait for each chunk by the dataset's deadline: urllib3 keeps reading until it
has a whole chunk, and its read timeout applies to each socket read, so a portal that trickles a
byte at a time would otherwise hold the dataset for ever.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from typing import Callable, Generator, Iterable

_DONE = object()


class DeadlineExceeded(Exception):
    """The dataset took longer than its deadline."""


def prefetched(chunks: Iterable[bytes], depth: int = 4, deadline: float = math.inf,
               on_deadline: Callable[[], None] | None = None) -> Generator[bytes, None, None]:
    """Yields `chunks` in order, at most `depth` read ahead; re-raises the reader's error in order.
    Raises DeadlineExceeded when the next chunk has not arrived by `deadline` (time.monotonic()),
    after `on_deadline()`, which must unblock the reader (shut its socket) so it ends before the
    caller closes the response: two threads must never release one connection.

    Closing the generator early (an error downstream) stops the reader at its next chunk."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        """Hands `item` to the consumer; False when the consumer stopped first."""
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
            item: object = _DONE
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            item = error
        put(item)

    reader = threading.Thread(target=read, name="prefetch", daemon=True)
    reader.start()
    try:
        while True:
            try:
                item = buffer.get(timeout=None if deadline == math.inf else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                if on_deadline is not None:
                    on_deadline()
                raise DeadlineExceeded("the dataset deadline passed while downloading") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=1.0)
