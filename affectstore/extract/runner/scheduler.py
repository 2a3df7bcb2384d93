"""The scheduler: a dataset's videos x the planned passes -> feature sets in a store.

It knows no modality. For each pass (see :mod:`.plan`) it asks the pass's feeder to decode
each video that still needs one of the pass's outputs (``prefetch`` videos ahead on a
thread), pools short videos and hands them to each extractor's ``extract_batch`` (pools
capped by count and by the feeder's units), streams long ones chunk by chunk through
``open_stream``, writes each output (then its completion mark) on a writer thread, and
records every failure with its stage and reason. Resume, shards, limit, progress and packing
work the same for every input.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from affectstore.extract.base import Extractor, OutputKind
from affectstore.extract.errors import ExtractionError, InputError
from affectstore.extract.feeders.base import Decoded, FeedContext, Feeder
from affectstore.extract.runner.media import MediaRecorder, check_same_dataset, dataset_digest, dataset_provenance
from affectstore.extract.runner.execute import PassExecutor, decode_stage, reason, write_output
from affectstore.extract.runner.options import RunOptions, load_extractor
from affectstore.extract.runner.plan import Pass, Plan
from affectstore.extract.runner.summary import FailureRecord, RunSummary
from affectstore.extract.runner.writer import Writer

logger = logging.getLogger(__name__)


class Runner:
    """One extraction run over a dataset's entries; see the module docstring. Use :func:`run_extraction`."""

    def __init__(
        self,
        store: Any,
        dataset: str,
        entries: Sequence[Any],
        plan: Plan,
        adapter: Any,
        options: RunOptions | None = None,
        *,
        limit: int | None = None,
        shard: tuple[int, int] | None = None,
        dataset_options: dict[str, Any] | None = None,
    ) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ExtractionError(f"limit must be an int >= 0. Got {limit!r} instead.")
        self.store = store
        self.dataset = dataset
        self.entries = sorted(entries, key=lambda e: e.id)
        self.plan = plan
        self.extractors = plan.extractors
        self.adapter = adapter
        self.options = options or RunOptions()
        self.limit = limit
        self.shard = shard
        #: the adapter options of this run, kept in the provenance's dataset record (with the root) so
        #: that `affect train` reads the labels as extraction did without being told again
        self.dataset_options = dict(dataset_options or {})
        self.hashes = [e.config_hash for e in self.extractors]
        self.outputs = [list(e.output_names) for e in self.extractors]
        self._feature_hash = {name: h for names, h in zip(self.outputs, self.hashes, strict=True) for name in names}
        self.media = MediaRecorder(adapter, self.options.hash_media)
        self._by_id = {e.id: e for e in self.entries}
        self._feeders: list[Feeder] = [
            p.feeder(FeedContext(adapter, store, dataset, self.options, self.extractors)) for p in plan.passes
        ]

    # -- planning ----------------------------------------------------------------------

    def check_configs(self) -> None:
        """Refuse before any work when a feature set exists with another config hash (the store's own check)."""
        from affectstore.store import ConfigMismatchError

        existing = set(self._store_features())
        check_same_dataset(self.store, self.dataset, self.adapter, sorted(existing))
        for k in self.plan.order:  # producers first: a changed upstream config is named as the cause
            extractor, names, h = self.extractors[k], self.outputs[k], self.hashes[k]
            for name in names:
                if name not in existing:
                    continue
                try:
                    self.store.check_config(self.dataset, name, h)
                except ConfigMismatchError as error:
                    stored = self.store.provenance(self.dataset, name)
                    diff = config_diff(stored, extractor)
                    raise ConfigMismatchError(f"{error} Settings that differ: {diff}.") from None
        for feature, h in self.plan.external.items():
            logger.info("reading %s/%s (config %s) from the store", self.dataset, feature, h)

    def _store_features(self) -> list[str]:
        from affectstore.store import UnknownDatasetError

        try:
            return self.store.features(self.dataset)
        except UnknownDatasetError:
            return []

    def _complete(self, feature: str) -> set[str]:
        """Ids with a completion mark (the store ignores marks a killed writer left half-written)."""
        return set(self.store.completed(self.dataset, feature))

    def plan_videos(self) -> tuple[list[Any], dict[str, dict[int, list[str]]], RunSummary]:
        """Entries to process and, per video, extractor index -> outputs still to write."""
        summary = RunSummary(self.dataset, self.store.location, [n for names in self.outputs for n in names], shard=self.shard)
        selection = self.entries
        if self.shard is not None:
            index, total = self.shard
            selection = selection[index::total]
            summary.other_shards = len(self.entries) - len(selection)
        summary.selected = len(selection)
        existing = set(self._store_features())
        done = {name: self._complete(name) if name in existing else set() for names in self.outputs for name in names}
        pass_of = {k: p for p, plan in enumerate(self.plan.passes) for k in plan.members}
        todo: list[Any] = []
        needs: dict[str, dict[int, list[str]]] = {}
        for entry in selection:
            need = {}
            for i, names in enumerate(self.outputs):
                missing = [n for n in names if entry.id not in done[n]]
                feeder = self._feeders[pass_of[i]]
                if missing and not feeder.applies(entry):
                    for n in names:
                        summary.not_applicable[n] = summary.not_applicable.get(n, 0) + 1
                    continue
                if missing and feeder.needs(i, entry):
                    need[i] = missing
            if need:
                todo.append(entry)
                needs[entry.id] = need
            else:
                summary.skipped += 1
        if self.limit is not None and len(todo) > self.limit:
            summary.left_by_limit = len(todo) - self.limit
            todo = todo[: self.limit]
        summary.planned = len(todo)
        return todo, needs, summary

    # -- running -----------------------------------------------------------------------

    def run(self) -> RunSummary:
        started = time.perf_counter()
        self.check_configs()
        todo, needs, summary = self.plan_videos()
        logger.info(
            "%s: %d videos selected, %d complete already, %d to extract with %s",
            self.dataset, summary.selected, summary.skipped, len(todo), ", ".join(e.prefix for e in self.extractors),
        )
        used = sorted({i for e in todo for i in needs[e.id]})
        self._kinds: dict[str, OutputKind] = {}
        origin = {**dataset_provenance(self.adapter), "options": self.dataset_options}
        if used and self.options.hash_media:
            origin.update(dataset_digest(self.media, self.entries))
        for i in used:
            load_extractor(self.extractors[i])
            specs = self.extractors[i].output_specs()
            for name, prov in self.extractors[i].provenance().items():
                self.store.create_feature(self.dataset, name, {**prov, "dataset": origin})
                self._kinds[name] = specs[name].kind
        summary.load_seconds = time.perf_counter() - started
        self._needs = needs
        self._summary = summary
        self._failed: dict[str, dict[str, FailureRecord]] = {}
        on_gpu = any(str(getattr(self.extractors[i].config, "device", "cpu")).startswith("cuda") for i in used)
        threads = self.options.writer_thread if self.options.writer_thread is not None else on_gpu
        self._prefetch = self.options.prefetch if self.options.prefetch is not None else (8 if on_gpu else 0)
        self._threads = threads
        self._writer = Writer(threads)
        self._elsewhere: dict[str, set[int]] = {}  # video -> extractors another process did or does
        self._board = self._claim_board()
        cluster = contextlib.ExitStack()
        self._client = None
        try:
            if todo and (self.options.dask or self.options.workers):
                from affectstore.extract.runner.cluster import open_client

                self._client = cluster.enter_context(open_client(self.options.dask, self.options.workers))
            for p, group in enumerate(self.plan.passes):
                entries = [e for e in todo if any(i in needs[e.id] for i in group.members)]
                if entries:
                    try:
                        self._run_pass(group, self._feeders[p], entries)
                    finally:
                        self._feeders[p].close()
                    if p + 1 < len(self.plan.passes):
                        self._flush_writes()  # a later pass may read what this one wrote
        finally:
            cluster.close()
            self._writer.close()
            if self._board is not None:
                self._board.stop()
        self._collect_write_errors()
        summary.failures = [f for per in self._failed.values() for f in per.values()]
        summary.failed = len(self._failed)
        others = {v for v, skipped in self._elsewhere.items() if skipped >= set(needs[v]) and v not in self._failed}
        summary.elsewhere = len(others)
        summary.done = len(todo) - summary.failed - summary.elsewhere
        for entry in todo:
            for i, names in needs[entry.id].items():
                if i in self._elsewhere.get(entry.id, set()):
                    continue
                for name in names:
                    if name not in self._failed.get(entry.id, {}):
                        summary.written[name] = summary.written.get(name, 0) + 1
        if self.options.pack and summary.left_by_limit == 0:
            self._pack(summary)
        summary.wall_seconds = time.perf_counter() - started
        logger.info(
            "%s: done %d, skipped %d, failed %d in %.1f s",
            self.dataset, summary.done, summary.skipped, summary.failed, summary.wall_seconds,
        )
        return summary

    def _claim_board(self) -> Any:
        """Per-video claims, so several processes on one store share the work (None where the store
        cannot hold claims, e.g. a remote one: then --shard splits the work)."""
        from affectstore.store import StoreError
        from affectstore.store.claims import ClaimBoard

        try:
            return ClaimBoard(self.store, self.dataset).start()
        except StoreError as error:
            logger.info("no per-video claims: %s", error)
            return None

    def _take(self, group: Pass, entry: Any) -> bool:
        """Claim a video for this pass; False (and noted) when another process holds it or has
        finished it meanwhile."""
        if self._board is None:
            return True
        if self._board.claim(entry.id):
            wanted = self._wanted(group, entry)
            done = all(self.store.is_done(self.dataset, n, entry.id, self.hashes[i]) for i, names in wanted.items() for n in names)
            if not done:
                return True
            self._board.release(entry.id)
        self._elsewhere.setdefault(entry.id, set()).update(self._wanted(group, entry))
        return False

    def _release(self, video_id: str) -> None:
        """Give the claim back once the video's writes (queued before this) are done."""
        if self._board is not None:
            board = self._board
            self._writer.submit(("release", video_id, ""), lambda: board.release(video_id))

    def _flush_writes(self) -> None:
        """Wait for queued writes, so the next pass can read them from the store."""
        self._writer.close()
        self._collect_write_errors()
        self._writer = Writer(self._threads)

    def _collect_write_errors(self) -> None:
        for (kind, video_id, feature), error in self._writer.take_errors():
            if kind == "write":
                self._fail_feature(video_id, feature, "write", reason(error), inline=True)
            else:
                logger.warning("could not record the failure of %s [%s]: %s", video_id, feature, reason(error))

    def _run_pass(self, group: Pass, feeder: Feeder, entries: list[Any]) -> None:
        opts = self.options
        if opts.by_size:
            entries = sorted(entries, key=feeder.order_key)
        self._bar = _progress(len(entries), opts.progress, f"{self.dataset} [{group.label}]", feeder.unit)
        self._unit = feeder.unit
        try:
            if self._client is not None:
                self._run_pass_in_workers(group, entries, self._client)
            elif self._uses_workers(group):
                self._run_pass_in_workers(group, entries)
            else:
                self._run_pass_here(group, feeder, entries)
        finally:
            self._bar.close()

    def _uses_workers(self, group: Pass) -> bool:
        """Worker processes for ``jobs > 1`` when every extractor of the pass computes on the CPU
        (GPU extractors batch across videos in one process instead)."""
        return self.options.jobs > 1 and all(
            str(self.extractors[i].config.device).startswith("cpu") for i in group.members
        )

    def _run_pass_here(self, group: Pass, feeder: Feeder, entries: list[Any]) -> None:
        batch = max((self.extractors[i].config.batch_size for i in group.members), default=1)
        pool_size = self.options.pool_size or 4 * batch
        pool_units = feeder.pool_units()
        executor = PassExecutor(group, self.extractors, self._needs, self._kinds, self)
        pool: list[tuple[Any, Decoded]] = []
        pooled = 0
        for entry, decoded in self._decoded(group, feeder, entries):
            if decoded is None:  # another process has it
                self._advance(1)
                continue
            if isinstance(decoded, BaseException):
                executor.fail_pass(entry.id, decode_stage(decoded), reason(decoded))
                self._release(entry.id)
                self._advance(1)
                continue
            if decoded.long:
                try:
                    if executor.stream_one(entry, decoded):
                        self._count(decoded.amount)
                finally:
                    decoded.close()
                self._release(entry.id)
                self._advance(1)
                continue
            pool.append((entry, decoded))
            pooled += decoded.units
            if len(pool) >= pool_size or pooled >= pool_units:
                self._run_pool(executor, pool)
                pool, pooled = [], 0
        if pool:
            self._run_pool(executor, pool)

    def _run_pool(self, executor: PassExecutor, pool: list[tuple[Any, Decoded]]) -> None:
        for _, decoded in pool:
            self._count(decoded.amount)
        executor.run_pool(pool)
        for entry, decoded in pool:
            decoded.close()
            self._release(entry.id)
        self._advance(len(pool))

    def _run_pass_in_workers(self, group: Pass, entries: list[Any], client: Any = None) -> None:
        """The pass as per-video tasks: on ``jobs`` local worker processes, or on a Dask ``client``'s workers."""
        from affectstore.extract.runner.workers import run_in_workers, worker_spec

        self._flush_writes()  # workers write themselves; nothing of ours may still be queued
        spec = worker_spec(self.store, self.dataset, self.adapter, self.options, self.extractors, group, self._kinds, self.hashes)

        def on_result(result: Any) -> None:
            self._count(result.amount)
            for feature, stage, why in result.failures:
                self._failed.setdefault(result.video_id, {})[feature] = FailureRecord(result.video_id, feature, stage, why)
            if self._board is not None:
                self._board.release(result.video_id)  # the worker has written everything
            self._advance(1)

        def claimed(entry: Any) -> bool:
            if self._take(group, entry):
                return True
            self._advance(1)
            return False

        if client is not None:
            from affectstore.extract.runner.cluster import run_on_cluster

            run_on_cluster(client, spec, entries, lambda entry: self._wanted(group, entry), on_result, claimed)
        else:
            run_in_workers(spec, entries, lambda entry: self._wanted(group, entry), self.options.jobs, on_result, claimed)

    # -- the sink of PassExecutor: queue writes and failures on the writer thread ------------

    def write(self, video_id: str, index: int, name: str, output: Any) -> None:
        h = self.hashes[index]
        media = self.media.record(self._by_id[video_id])

        def job() -> None:
            write_output(self.store, self.dataset, name, video_id, output, h, media)

        self._writer.submit(("write", video_id, name), job)

    def fail(self, video_id: str, name: str, stage: str, why: str) -> None:
        self._fail_feature(video_id, name, stage, why)

    def _wanted(self, group: Pass, entry: Any) -> dict[int, list[str]]:
        need = self._needs[entry.id]
        return {i: need[i] for i in group.members if i in need}

    def _count(self, amount: float) -> None:
        self._summary.amounts[self._unit] = self._summary.amounts.get(self._unit, 0.0) + amount

    def _advance(self, n: int) -> None:
        self._bar.update(n)
        elapsed = self._bar.format_dict.get("elapsed") or 0.0
        if elapsed > 0:
            rate = self._summary.amounts.get(self._unit, 0.0) / elapsed
            self._bar.set_postfix({"failed": len(self._failed), f"{self._unit}/s": f"{rate:.0f}"}, refresh=False)

    def _decoded(self, group: Pass, feeder: Feeder, entries: list[Any]) -> Iterator[tuple[Any, Decoded | BaseException | None]]:
        """Decoded input per entry in order; decoding runs ``prefetch`` videos ahead on a thread."""

        def decode(entry: Any) -> Decoded | BaseException | None:
            from affectstore.media import MediaError

            if not self._take(group, entry):
                return None
            try:
                return feeder.decode(entry, self._wanted(group, entry))
            except (MediaError, OSError, InputError, ExtractionError) as error:
                return error
            except Exception as error:  # noqa: BLE001 - any decode error is this video's; raised on the
                # prefetch thread it would end the thread and leave the run waiting forever
                logger.warning("unexpected error decoding %s", entry.id, exc_info=True)
                return error

        if self._prefetch == 0:
            for entry in entries:
                yield entry, decode(entry)
            return
        results: queue.Queue = queue.Queue(maxsize=self._prefetch)
        stop = threading.Event()

        def produce() -> None:
            for entry in entries:
                if stop.is_set():
                    return
                item = decode(entry)
                while not stop.is_set():
                    try:
                        results.put((entry, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
            results.put(None)

        thread = threading.Thread(target=produce, name="affectstore-decoder", daemon=True)
        thread.start()
        try:
            while (item := results.get()) is not None:
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # let the producer see the stop flag, then release what it decoded
                try:
                    item = results.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is not None and isinstance(item[1], Decoded):
                    item[1].close()
            thread.join()

    def _fail_feature(self, video_id: str, feature: str, stage: str, why: str, *, inline: bool = False) -> None:
        self._failed.setdefault(video_id, {})[feature] = FailureRecord(video_id, feature, stage, why)
        logger.debug("%s [%s] failed at %s: %s", video_id, feature, stage, why)
        h = self._feature_hash[feature]

        def job() -> None:
            self.store.record_failure(self.dataset, feature, video_id, stage, why, config_hash=h)

        if inline:
            try:
                job()
            except Exception:  # noqa: BLE001 - the failure is in the summary either way
                logger.warning("could not record the failure of %s [%s]", video_id, feature, exc_info=True)
        else:
            self._writer.submit(("record", video_id, feature), job)

    def _pack(self, summary: RunSummary) -> None:
        """Pack each feature set whose whole selection (every shard, every process) is complete;
        whoever finishes last packs, once (`pack_when_complete`)."""
        from affectstore.store.claims import pack_when_complete

        pass_of = {k: p for p, plan in enumerate(self.plan.passes) for k in plan.members}
        existing = set(self._store_features())
        for i, names in enumerate(self.outputs):
            feeder = self._feeders[pass_of[i]]
            expected = [e.id for e in self.entries if feeder.applies(e) and feeder.needs(i, e)]
            for name in names:
                if name not in existing or self._kinds.get(name) is OutputKind.TEXT or not summary.written.get(name):
                    continue  # nothing new here: the pack (if any) is current, or load_feature builds it
                outcome = pack_when_complete(self.store, self.dataset, name, expected)
                if outcome.status == "packed":
                    summary.packed.append(name)
                elif outcome.status == "incomplete" and self.shard is None:
                    logger.info("not packing %s/%s: %d of its videos are not complete", self.dataset, name, outcome.missing)
                elif outcome.status in ("busy", "failed"):
                    logger.info("%s/%s not packed here: %s", self.dataset, name, outcome.holder or outcome.reason or outcome.status)


def config_diff(stored: Mapping[str, Any], extractor: Extractor[Any]) -> str:
    """Which settings (and read feature sets) differ between a stored feature set and an extractor."""
    ignore = set(extractor.config.NON_OUTPUT_FIELDS)
    old, new = stored.get("config") or {}, extractor.config.to_dict()
    keys = sorted((set(old) | set(new)) - ignore)
    changes = [f"{k}: stored {old.get(k)!r}, requested {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    old_deps, new_deps = stored.get("depends_on") or {}, extractor.dependency_hashes
    for feature in sorted(set(old_deps) | set(new_deps)):
        if old_deps.get(feature) != new_deps.get(feature):
            changes.append(
                f"reads {feature} with config {old_deps.get(feature)!r} in the store, now {new_deps.get(feature)!r} "
                f"(re-extracting {feature} changes everything computed from it)"
            )
    return "; ".join(changes) or "none in the config (the extractor version differs)"


def _progress(total: int, enabled: bool, label: str, unit: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", desc=f"extract {label}", disable=not enabled, dynamic_ncols=True, smoothing=0.1)
