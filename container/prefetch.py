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
               unblock: Callable[[], None] | None = None) -> Generator[bytes, None, None]:
    """Yields `chunks` in order, at most `depth` read ahead; re-raises the reader's error in order.
    Raises DeadlineExceeded when the next chunk has not arrived by `deadline`.

    `unblock()` must end a read the reader is blocked in (shut its socket). It is called when the
    deadline passes and when the generator is closed early (an error downstream, such as an
    invalid page or the deadline seen between chunks) while the reader still reads; either way
    the reader has ended when the generator is done, so the caller may close the response next:
    two threads must never release one connection. Close the generator before the response
    (`contextlib.closing` inside the response's `with`)."""
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
    read_to_the_end = False  # the reader is done: its last item (the end or its error) came
    try:
        while True:
            try:
                item = waits.wait(lambda timeout: buffer.get(timeout=timeout), queue.Empty)
            except queue.Empty:
                raise waits.exceeded("while downloading") from None
            read_to_the_end = item is _DONE or isinstance(item, BaseException)
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        # Only a reader cut short is unblocked: a page read to its end keeps its connection alive.
        if not read_to_the_end and unblock is not None:
            unblock()
        reader.join(timeout=1.0)
