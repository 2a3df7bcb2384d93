"""Store writes in order on one background thread (or inline), with their failures collected."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class Writer:
    """Runs store writes in order on one background thread (or inline); collects their failures."""

    def __init__(self, threaded: bool, depth: int = 64):
        self._threaded = threaded
        self._errors: list[tuple[Any, BaseException]] = []
        self._lock = threading.Lock()
        if threaded:
            self._queue: queue.Queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._loop, name="affectstore-writer", daemon=True)
            self._thread.start()

    def submit(self, tag: Any, job: Callable[[], None]) -> None:
        if self._threaded:
            self._queue.put((tag, job))
        else:
            self._call(tag, job)

    def _call(self, tag: Any, job: Callable[[], None]) -> None:
        try:
            job()
        except Exception as error:  # noqa: BLE001 - recorded per video by the runner
            with self._lock:
                self._errors.append((tag, error))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._call(*item)

    def take_errors(self) -> list[tuple[Any, BaseException]]:
        with self._lock:
            errors, self._errors = self._errors, []
        return errors

    def close(self) -> None:
        if self._threaded:
            self._queue.put(None)
            self._thread.join()
