"""Reading ahead in a background thread, so that training never waits for the disk."""

from __future__ import annotations

import queue
import threading

_END = object()


def prefetch(iterable, depth: int = 2):
    """Yield the items of ``iterable``, produced up to ``depth`` items ahead by a thread (h5py
    reads and NumPy batching overlap the training step, which releases the GIL). An exception
    in the producer is raised here; stopping early stops the producer."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_END)
        except BaseException as error:  # handed to the consumer
            items.put(error)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
