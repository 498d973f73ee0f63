"""Read-ahead for a streamed download: a thread pulls the next chunks off the socket while the
caller checks and uploads the current one (socket reads release the GIL, so they overlap).

Hand-written because neither requests nor urllib3 reads ahead; it is a bounded queue and a thread.
It also bounds the wait for each chunk by the dataset's deadline (`container.deadline`, which the
job's deadline or SIGTERM can bring forward): urllib3 keeps reading until it has a whole chunk, and
its read timeout applies to each socket read, so a portal that trickles a byte at a time would
otherwise hold the dataset for ever.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Generator, Iterable

from container.deadline import Deadline

_DONE = object()


def prefetched(chunks: Iterable[bytes], depth: int = 4, deadline: Deadline | None = None,
               on_deadline: Callable[[], None] | None = None) -> Generator[bytes, None, None]:
    """Yields `chunks` in order, at most `depth` read ahead; re-raises the reader's error in order.
    Raises DeadlineExceeded when the next chunk has not arrived by `deadline`, after
    `on_deadline()`, which must unblock the reader (shut its socket) so it ends before the caller
    closes the response: two threads must never release one connection.

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

    waits = deadline if deadline is not None else Deadline()
    reader = threading.Thread(target=read, name="prefetch", daemon=True)
    reader.start()
    try:
        while True:
            try:
                item = waits.wait(lambda timeout: buffer.get(timeout=timeout), queue.Empty)
            except queue.Empty:
                if on_deadline is not None:
                    on_deadline()
                raise waits.exceeded("while downloading") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=1.0)
