"""A pass run by worker processes (``--jobs N``): per-video tasks, models loaded once per worker.

CPU-bound libraries (openSMILE cannot run in threads, CTranslate2 and LiteRT use a thread or
two well) use both cores only from several processes. Each worker (joblib's loky executor)
builds the pass's feeder and extractors once, then for each video it is given decodes the
input, runs the extractors and writes the outputs straight into the store (one writer per
video, completion mark last, as in the main process); it sends back only what the summary
needs. A worker that dies (a native crash in a decoder or model) costs the videos it held:
they are recorded as failed with the cause and the pool is started again for the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from affectstore.extract.base import OutputKind
from affectstore.extract.runner.execute import PassExecutor, decode_stage, expected_decode_error, reason, write_output
from affectstore.extract.runner.media import MediaRecorder
from affectstore.extract.runner.plan import Pass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to rebuild the pass (sent once, at the worker's start)."""

    store: str
    dataset: str
    adapter: Any
    options: Any
    extractors: tuple[tuple[str, dict[str, Any], dict[str, str]], ...]
    group: Pass
    kinds: dict[str, OutputKind]
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class VideoResult:
    video_id: str
    amount: float
    failures: tuple[tuple[str, str, str], ...]  # (feature, stage, reason)


STATE: dict[str, Any] = {}


def start_worker(spec: WorkerSpec) -> None:
    """Worker initializer: open the store, rebuild and load the pass's extractors once."""
    from affectstore.extract.feeders.base import FeedContext
    from affectstore.extract.registry import create_extractor
    from affectstore.store import FeatureStore

    extractors = []
    for name, config, dependencies in spec.extractors:
        extractor = create_extractor(name, config)
        extractor.bind_dependencies(dependencies)
        extractors.append(extractor)
    for i in spec.group.members:
        extractors[i].load()
    store = FeatureStore.open(spec.store, mode="a")
    STATE.update(
        spec=spec, store=store, extractors=extractors, media=MediaRecorder(spec.adapter, spec.options.hash_media),
        feeder=spec.group.feeder(FeedContext(spec.adapter, store, spec.dataset, spec.options, extractors)),
    )


class _DirectSink:
    def __init__(self, media: dict[str, Any] | None = None) -> None:
        self.failures: list[tuple[str, str, str]] = []
        self.media = media

    def write(self, video_id: str, index: int, name: str, output: Any) -> None:
        spec = STATE["spec"]
        try:
            write_output(STATE["store"], spec.dataset, name, video_id, output, spec.hashes[index], self.media)
        except Exception as error:  # noqa: BLE001 - recorded for this video
            self.fail(video_id, name, "write", reason(error))

    def fail(self, video_id: str, name: str, stage: str, why: str) -> None:
        spec = STATE["spec"]
        index = next(i for i in spec.group.members if name in _output_names(spec, i))
        try:
            STATE["store"].record_failure(spec.dataset, name, video_id, stage, why, config_hash=spec.hashes[index])
        except Exception:  # noqa: BLE001 - the failure reaches the summary either way
            logger.warning("could not record the failure of %s [%s]", video_id, name, exc_info=True)
        self.failures.append((name, stage, why))


def _output_names(spec: WorkerSpec, index: int) -> tuple[str, ...]:
    return STATE["extractors"][index].output_names


def process_video(entry: Any, wanted: dict[int, list[str]]) -> VideoResult:
    """One video of the pass, in a worker: decode, extract, write."""
    spec = STATE["spec"]
    sink = _DirectSink(STATE["media"].record(entry))
    executor = PassExecutor(spec.group, STATE["extractors"], {entry.id: wanted}, spec.kinds, sink)
    try:
        decoded = STATE["feeder"].decode(entry, wanted)
    except Exception as error:  # noqa: BLE001 - this video's failure
        if not expected_decode_error(error):
            logger.warning("unexpected error decoding %s", entry.id, exc_info=True)
        executor.fail_pass(entry.id, decode_stage(error), reason(error))
        return VideoResult(entry.id, 0.0, tuple(sink.failures))
    try:
        if decoded.long:
            executor.stream_one(entry, decoded)
        else:
            executor.run_pool([(entry, decoded)])
    finally:
        decoded.close()
    return VideoResult(entry.id, decoded.amount, tuple(sink.failures))


def run_in_workers(
    spec: WorkerSpec,
    entries: Sequence[Any],
    wanted: Callable[[Any], dict[int, list[str]]],
    jobs: int,
    on_result: Callable[[VideoResult], None],
    claimed: Callable[[Any], bool] = lambda entry: True,
) -> None:
    """Every entry as one task on ``jobs`` worker processes; ``on_result`` gets each video's result
    as it completes (in the main process). ``claimed`` is asked just before a video is sent (False:
    another process has it). Videos of a worker that died are reported failed."""
    from concurrent.futures import FIRST_COMPLETED, wait

    from joblib.externals.loky import get_reusable_executor
    from joblib.externals.loky.process_executor import BrokenProcessPool, TerminatedWorkerError

    todo = list(entries)
    in_flight: dict[Any, Any] = {}
    executor = None
    depth = 2 * jobs
    while todo or in_flight:
        if executor is None:
            # A fresh pool (after a crash too): each worker loads the models once in start_worker.
            executor = get_reusable_executor(max_workers=jobs, initializer=start_worker, initargs=(spec,), reuse=False)
        while todo and len(in_flight) < depth:
            entry = todo.pop(0)
            if claimed(entry):
                in_flight[executor.submit(process_video, entry, wanted(entry))] = entry
        if not in_flight:
            continue
        done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
        for future in done:
            entry = in_flight.pop(future)
            try:
                on_result(future.result())
            except (BrokenProcessPool, TerminatedWorkerError) as error:
                cause = _crash_reason(error)
                logger.warning("a worker died while extracting %s (%s); starting the pool again", entry.id, cause)
                failures = tuple((name, "worker", cause) for names in wanted(entry).values() for name in names)
                on_result(VideoResult(entry.id, 0.0, failures))
                # The other videos in flight died with the pool: run them again, one at a time,
                # so the video that crashes it is found.
                for other in list(in_flight.values()):
                    todo.insert(0, other)
                in_flight.clear()
                executor.shutdown(wait=False, kill_workers=True)
                executor, depth = None, 1
                break


def _crash_reason(error: BaseException) -> str:
    text = str(error)
    for line in text.splitlines():
        if "exit code" in line or "signal" in line.lower():
            return f"the worker process died ({line.strip()})"
    return f"the worker process died ({type(error).__name__})"


def worker_spec(store: Any, dataset: str, adapter: Any, options: Any, extractors: Sequence[Any], group: Pass,
                kinds: Mapping[str, OutputKind], hashes: Iterable[str]) -> WorkerSpec:
    """The spec of a pass for :func:`run_in_workers`; the store must be one other processes can open."""
    location = store.location
    if not isinstance(location, str) or (not os.path.isdir(location) and "://" not in location):
        raise ValueError(f"worker processes need a store they can open by path or URL; {location!r} is not one.")
    # A worker is a crash boundary of its own: decoding in yet another child process would add nothing.
    return WorkerSpec(
        location, dataset, adapter, dataclasses.replace(options, isolate=False),
        tuple((e.name, e.config.to_dict(), e.dependency_hashes) for e in extractors),
        group, dict(kinds), tuple(hashes),
    )
