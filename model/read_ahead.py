"""One helper thread that makes a stream's next item while its reader works on the one before."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar, cast

T = TypeVar("T")


def read_ahead(items: Iterator[T], *, name: str) -> Iterator[T]:
    """`items`, each made in a helper thread ("`name`-read-ahead") while the caller works on the one before: an
    engine's decoding, resampling and features overlap its model's runs. Stopping early (an error, a cancel) stops
    the helper too, and a read_ahead whose items it reads; its errors are raised here."""
    ready: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)  # (done, item or error)
    stop = threading.Event()

    def put(entry: tuple[bool, object]) -> bool:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                ready.put(entry, timeout=0.1)
                return True
        return False

    def make() -> None:
        try:
            for item in items:
                if not put((False, item)):
                    return
            put((True, None))
        except BaseException as error:  # handed to the caller, who raises it
            put((True, error))
        finally:
            close = getattr(items, "close", None)
            if close:  # a read_ahead it reads from stops its own helper now
                close()

    helper = threading.Thread(target=make, name=f"{name}-read-ahead", daemon=True)
    helper.start()
    try:
        while True:
            done, item = ready.get()
            if isinstance(item, BaseException):
                raise item
            if done:
                return
            yield cast(T, item)
    finally:
        stop.set()
        helper.join()
