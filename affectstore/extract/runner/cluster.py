"""Extraction on a Dask cluster (``--dask ADDRESS`` or ``--workers N``): per-video tasks, models loaded once per worker.

The same per-video task as ``--jobs`` (see :mod:`.workers`): a worker plugin rebuilds the
pass's extractors and loads their models once when a worker joins (workers that join
later load too), and each task decodes one video, runs the extractors and writes the
outputs straight into the shared store (one writer per video, completion mark last).
The client keeps the claims (so plain processes and clusters can share one store), sends
at most two videos per worker ahead, shows progress and builds the run's summary from
what each task returns. A video whose worker dies is retried by Dask on another worker;
one that kills workers repeatedly (``KilledWorker``) is recorded as failed. Resuming is
the single-machine resume: completion marks decide what is left.

``--workers N`` starts a ``dask.distributed.LocalCluster`` of N single-threaded worker
processes on this machine; ``--dask tcp://host:8786`` uses a running scheduler (e.g. one
started by dask-jobqueue on SLURM); its workers must reach the store by the same path or URL.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from affectstore.extract.errors import ExtractionError
from affectstore.extract.runner import workers
from affectstore.extract.runner.workers import VideoResult, WorkerSpec

logger = logging.getLogger(__name__)

PLUGIN_NAME = "affectstore-extract"

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the dist extra is missing: _distributed() says how to install it
    WorkerPlugin = object  # type: ignore[assignment,misc]


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ExtractionError("--dask and --workers need dask.distributed: pip install 'affectstore[dist]'.") from None
    return distributed


class LoadedModels(WorkerPlugin):
    """Worker plugin: build and load the pass's extractors once per worker process (``setup``)."""

    name = PLUGIN_NAME

    def __init__(self, spec: WorkerSpec, token: str) -> None:
        self.spec = spec
        self.token = token

    def setup(self, worker: Any = None) -> None:
        workers.start_worker(self.spec)
        workers.STATE["token"] = self.token

    def teardown(self, worker: Any = None) -> None:
        workers.STATE.clear()


def _task(entry: Any, wanted: dict[int, list[str]], token: str) -> VideoResult:
    """One video on a worker: the plugin's loaded pass (the same task as --jobs)."""
    if workers.STATE.get("token") != token:
        raise RuntimeError("this worker holds another run's models (the plugin of this run did not set it up)")
    return workers.process_video(entry, wanted)


@contextlib.contextmanager
def open_client(address: str | None, n_workers: int | None) -> Iterator[Any]:
    """A client of the scheduler at ``address``, or of a new LocalCluster of ``n_workers`` processes."""
    distributed = _distributed()
    if address:
        try:
            client = distributed.Client(address, timeout="30s")
        except (OSError, TimeoutError) as error:
            raise ExtractionError(f"--dask {address}: cannot reach the scheduler ({error}). Start one (dask scheduler) "
                                  "or use --workers N for a cluster on this machine.") from None
        try:
            yield client
        finally:
            client.close()
        return
    if not isinstance(n_workers, int) or isinstance(n_workers, bool) or n_workers < 1:
        raise ExtractionError(f"--workers must be an int >= 1. Got {n_workers!r} instead.")
    # One thread per worker: a worker's extractors are not shared between threads, and the
    # libraries (torch, openSMILE) use the worker's core themselves.
    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=logging.WARNING)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_on_cluster(
    client: Any,
    spec: WorkerSpec,
    entries: Sequence[Any],
    wanted: Callable[[Any], dict[int, list[str]]],
    on_result: Callable[[VideoResult], None],
    claimed: Callable[[Any], bool] = lambda entry: True,
) -> None:
    """Every entry as one task on ``client``'s workers; ``on_result`` gets each video's result as it
    completes. ``claimed`` is asked just before a video is sent (False: another process has it)."""
    distributed = _distributed()
    token = uuid.uuid4().hex
    client.register_plugin(LoadedModels(spec, token), name=PLUGIN_NAME)
    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    todo = list(entries)
    pending = distributed.as_completed()
    sent: dict[str, Any] = {}
    numbers = iter(range(len(todo)))

    def send() -> None:
        while todo and pending.count() < 2 * n_workers:
            entry = todo.pop(0)
            if claimed(entry):
                key = f"affectstore-{token[:8]}-{next(numbers)}"
                future = client.submit(_task, entry, wanted(entry), token, pure=False, key=key)
                sent[future.key] = entry
                pending.add(future)

    send()
    while pending.count():
        future = next(pending)
        entry = sent.pop(future.key)
        try:
            result = future.result()
        except distributed.KilledWorker as error:
            cause = f"the worker process died on it repeatedly ({error})"
            logger.warning("%s: %s", entry.id, cause)
            result = VideoResult(entry.id, 0.0, tuple((name, "worker", cause) for names in wanted(entry).values() for name in names))
        except Exception as error:  # noqa: BLE001 - an error outside the per-video handling is this video's
            cause = f"{type(error).__name__}: {error}"
            logger.warning("%s failed on a worker: %s", entry.id, cause)
            result = VideoResult(entry.id, 0.0, tuple((name, "worker", cause) for names in wanted(entry).values() for name in names))
        finally:
            future.release()
        on_result(result)
        send()
    with contextlib.suppress(Exception):  # a scheduler without the plugin any more is fine
        client.unregister_worker_plugin(PLUGIN_NAME)
