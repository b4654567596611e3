"""Work queued for one thread, taken in batches: a writer that makes many requests durable
with one fsync or one COMMIT takes everything waiting at once."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def batches(waiting: queue.SimpleQueue[T | None], most: int) -> Iterator[list[T]]:
    """Each batch is the next item (waited for) and whatever else is queued, up to
    ``most``. A None in the queue ends the iteration, after the batch before it."""
    while True:
        first = waiting.get()
        if first is None:
            return
        batch = [first]
        stopping = False
        while len(batch) < most:
            try:
                item = waiting.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping = True
                break
            batch.append(item)
        yield batch
        if stopping:
            return
