"""Read-ahead for a streamed download: a thread pulls the next chunks off the socket while the
caller checks and uploads the current one (socket reads release the GIL, so they overlap).

Hand-written because neither requests nor urllib3 reads ahead; it is a bounded queue and a thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Generator, Iterable

_DONE = object()


def prefetched(chunks: Iterable[bytes], depth: int = 4) -> Generator[bytes, None, None]:
    """Yields `chunks` in order, at most `depth` read ahead; re-raises the reader's error in order.

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
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=1.0)  # a reader blocked on a slow socket ends when the response closes
