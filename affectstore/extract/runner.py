"""The extraction runner: a dataset's manifest x the requested extractors -> feature sets in a store.

    from affectstore.extract.runner import run_extraction
    summary = run_extraction("clips", "data/ravdess-dev", ["egemaps"], "runs/ravdess.zarr")
    print(summary.text())

What it does, in order:

1. **Plan.** Every output of every extractor is one feature set (``vad`` and
   ``vad-frames``, ``egemaps`` and ``egemaps-lld``). A feature set already in the store
   with another config hash stops the run before any work (the store's
   ``ConfigMismatchError``, plus which settings differ). Videos whose every output is
   complete are skipped (one ``completed()`` listing per feature set); ``--shard I/N``
   picks every N-th video of the sorted selection, ``--limit`` caps what is left.
2. **Load** each extractor once. A model that cannot be loaded stops the run with one
   message naming it and how to provide it; nothing is recorded per video.
3. **Decode** each video's audio once (16 kHz mono, streamed in blocks) and feed every
   extractor that needs it. Short clips are pooled (``pool_size`` clips) and passed
   together to ``extract_batch``, which sorts clips and windows by length and pads within
   a batch: bucketing by length across videos. A clip longer than ``stream_above_s`` is
   spilled to an unlinked temporary file while its length and statistics are taken, then
   read back block by block into each extractor's ``open_stream``: memory does not grow
   with its length (except for extractors without a bounded stream, e.g. eGeMAPS, and
   the outputs of the one video, which the store writes in one piece).
4. **Write** each video's arrays, then its completion mark (``FeatureStore.write_video``),
   on a writer thread so writes overlap compute. A failure (bad media, an input the
   extractor refuses, a model error) is recorded per feature set with its stage and
   reason; the run goes on. Failed videos are retried on the next run.
5. **Pack** every feature set whose videos (of the whole selection, all shards) are now
   complete, for fast bulk reads; then return a :class:`RunSummary`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from affectstore.extract.base import (
    SAMPLE_RATE,
    AudioExtractor,
    Extractor,
    ExtractorError,
    Features,
    Input,
    InputError,
    MissingDependencyError,
    ModelLoadError,
    UnknownExtractorError,
    WaveStats,
    available_extractors,
    create_extractor,
    get_extractor_class,
)

logger = logging.getLogger(__name__)

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
DTYPES = ("float32", "float16", "bfloat16")


class ExtractionError(ExtractorError):
    """The run cannot start or go on (bad option, model that cannot load, unsupported input)."""


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class RunOptions:
    """How the runner works; none of these change the numbers written.

    - ``pool_size``: clips decoded and passed to ``extract_batch`` together (None: 4 x the
      largest extractor batch size); ``pool_seconds`` caps their total audio.
    - ``stream_above_s``: clips longer than this go through the streaming path.
    - ``block_s``: decode and stream block length.
    - ``prefetch``: videos decoded ahead on a background thread (0: decode inline).
    - ``writer_thread``: write on a background thread, overlapping compute.
      Both default (None) to on when an extractor runs on CUDA, where the GPU computes
      while Python threads decode and write, and off on CPU, where they measured slower
      (benchmarks/extract_cpu.py: the threads compete for the GIL and the cores with torch).
    - ``pack``: pack feature sets whose selection is complete at the end.
    - ``progress``: show a tqdm bar on stderr.
    - ``spill_dir``: folder for the temporary files of long clips (None: the system's).
    - ``by_size``: process videos in order of their audio file's size (a cheap proxy of
      duration), so each pool holds clips of similar length and batches pad little.
    """

    pool_size: int | None = None
    pool_seconds: float = 600.0
    stream_above_s: float = 60.0
    block_s: float = 30.0
    prefetch: int | None = None
    writer_thread: bool | None = None
    pack: bool = True
    progress: bool = True
    spill_dir: str | None = None
    by_size: bool = True

    def __post_init__(self) -> None:
        if self.pool_size is not None and (isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int) or self.pool_size < 1):
            raise ValueError(f"pool_size must be None or an int >= 1. Got {self.pool_size!r} instead.")
        for name in ("pool_seconds", "stream_above_s", "block_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0. Got {value!r} instead.")
        if self.prefetch is not None and (isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int) or self.prefetch < 0):
            raise ValueError(f"prefetch must be None (auto) or an int >= 0. Got {self.prefetch!r} instead.")


def parse_shard(shard: str | tuple[int, int] | None, environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """``"I/N"`` (0 <= I < N) or a tuple; None reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT
    (minus SLURM_ARRAY_TASK_MIN, so arrays numbered from 1 work) and gives None outside an array job."""
    if shard is None:
        task, count = environ.get("SLURM_ARRAY_TASK_ID"), environ.get("SLURM_ARRAY_TASK_COUNT")
        if task is None or count is None:
            return None
        try:
            index, total = int(task) - int(environ.get("SLURM_ARRAY_TASK_MIN", "0")), int(count)
        except ValueError:
            raise ExtractionError(
                f"SLURM_ARRAY_TASK_ID={task!r}, SLURM_ARRAY_TASK_COUNT={count!r} must be integers."
            ) from None
        source = f"SLURM_ARRAY_TASK_ID={task} (count {count})"
    elif isinstance(shard, tuple):
        index, total = shard
        source = repr(shard)
    else:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(shard))
        if match is None:
            raise ExtractionError(f"--shard must look like I/N with 0 <= I < N (e.g. 0/4). Got {shard!r} instead.")
        index, total = int(match.group(1)), int(match.group(2))
        source = repr(shard)
    if not (total >= 1 and 0 <= index < total):
        raise ExtractionError(f"shard index must be in [0, {total}) and count >= 1; got {index}/{total} from {source}.")
    return index, total


# --------------------------------------------------------------------------- extractors


def build_extractors(
    features: Sequence[str | Extractor],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
) -> list[Extractor]:
    """Extractor instances (not loaded) for ``features``.

    A feature is a registered extractor name, a prefix defined in ``settings`` with an
    ``extractor`` key (as recipes do), or an :class:`Extractor`. ``device``, ``dtype`` and
    ``batch_size`` override every extractor that has such a setting.
    """
    settings = dict(settings or {})
    if device is not None and not DEVICE_PATTERN.match(device):
        raise ExtractionError(f"device must be cpu, cuda or cuda:K (e.g. cuda:0). Got {device!r} instead.")
    if dtype is not None and dtype not in DTYPES:
        raise ExtractionError(f"dtype must be one of {', '.join(DTYPES)}. Got {dtype!r} instead.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ExtractionError(f"batch size must be an int >= 1. Got {batch_size!r} instead.")
    out: list[Extractor] = []
    for feature in features:
        if isinstance(feature, Extractor):
            extractor = feature
        else:
            table = dict(settings.get(feature, {}))
            name = table.pop("extractor", feature)
            if name != feature:
                table.setdefault("name", feature)
            try:
                cls = get_extractor_class(name)
            except UnknownExtractorError:
                defined = sorted(k for k, v in settings.items() if isinstance(v, Mapping))
                extra = f" The recipe defines: {', '.join(defined)}." if defined else ""
                raise UnknownExtractorError(
                    f"Unknown feature {feature!r}. Known extractors: {', '.join(available_extractors())}.{extra}"
                ) from None
            fields = {f.name for f in dataclasses.fields(cls.config_class)}
            for key, value in (("device", device), ("dtype", dtype), ("batch_size", batch_size)):
                if value is not None and key in fields:
                    table[key] = value
            try:
                extractor = create_extractor(name, table)
            except (TypeError, ValueError) as error:
                raise ExtractionError(f"Bad settings for feature {feature!r} (extractor {name!r}): {error}") from error
        if extractor.input is not Input.AUDIO or not isinstance(extractor, AudioExtractor):
            raise ExtractionError(
                f"Extractor {extractor.name!r} needs {extractor.input.value} input; this runner feeds audio "
                "extractors only so far."
            )
        out.append(extractor)
    names = [n for e in out for n in e.output_names]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExtractionError(
            f"Feature set name(s) {', '.join(map(repr, duplicates))} would be written by two extractors. Give one of them "
            "another name (setting name = '...', or a recipe table with extractor = '...')."
        )
    return out


def load_extractor(extractor: Extractor) -> None:
    """Load the model once; a model that cannot load becomes one ExtractionError saying how to provide it."""
    try:
        extractor.load()
    except ModelLoadError as error:
        model = getattr(extractor.config, "model", None)
        raise ExtractionError(
            f"Extractor {extractor.prefix!r} could not load model {model!r}: {error}\n"
            f"Provide it as a local folder (config.json + weights), e.g. --set {extractor.prefix}.model=/path/to/model "
            f"or `model = \"/path/to/model\"` in the recipe's [extractors.{extractor.prefix}] table, or put the hub "
            "snapshot in the Hugging Face cache (HF_HOME / HF_HUB_CACHE, e.g. `huggingface-cli download "
            f"{model}` on a machine with internet, then copy the cache) and keep HF_HUB_OFFLINE=1."
        ) from error
    except MissingDependencyError as error:
        raise ExtractionError(str(error)) from error


def store_provenance(extractor: Extractor) -> dict[str, dict[str, Any]]:
    """The provenance of each output in the store's form: everything the extractor gives
    (model id, revision, weight hashes, full config, libraries) plus ``kind`` and ``model_id``."""
    specs = extractor.output_specs()
    out = {}
    for name, prov in extractor.provenance().items():
        spec = specs[name]
        entry = dict(prov)
        entry["kind"] = "video" if spec.per_video else "frames"
        entry["rate"] = spec.rate
        entry["model_id"] = (prov.get("model") or {}).get("id")
        out[name] = entry
    return out


# --------------------------------------------------------------------------- decoding


class DecodedAudio:
    """A decoded clip: in memory (``waveform``) or, when long, in an unlinked temporary file."""

    def __init__(self, stats: WaveStats, waveform: np.ndarray | None = None, spill: BinaryIO | None = None):
        self.stats = stats
        self.waveform = waveform
        self._spill = spill

    @property
    def long(self) -> bool:
        return self._spill is not None

    def blocks(self, block_samples: int) -> Iterator[np.ndarray]:
        """The clip in consecutive float32 blocks."""
        if self._spill is None:
            for start in range(0, len(self.waveform), block_samples):
                yield self.waveform[start : start + block_samples]
            return
        self._spill.seek(0)
        while data := self._spill.read(block_samples * 4):
            yield np.frombuffer(data, dtype=np.float32)

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self.waveform = None


def decode_audio(path: str | Path, spill_above: int, block_s: float = 30.0, spill_dir: str | None = None) -> DecodedAudio:
    """Decode a file's audio once (16 kHz mono float32, streamed); clips longer than ``spill_above``
    samples go to a temporary file as they decode, so memory stays at about one block."""
    from affectstore.media import stream_audio

    stats = WaveStats()
    pieces: list[np.ndarray] = []
    spill: BinaryIO | None = None
    try:
        for _, block in stream_audio(path, window=block_s):
            stats = stats.add(block)
            if spill is None:
                pieces.append(block)
                if stats.n_samples > spill_above:
                    spill = tempfile.TemporaryFile(dir=spill_dir)  # noqa: SIM115 - closed by DecodedAudio.close
                    for piece in pieces:
                        spill.write(piece.tobytes())
                    pieces = []
            else:
                spill.write(block.tobytes())
    except BaseException:
        if spill is not None:
            spill.close()
        raise
    if spill is not None:
        spill.flush()
        return DecodedAudio(stats, spill=spill)
    waveform = pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return DecodedAudio(stats, waveform=waveform)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class FailureRecord:
    video_id: str
    feature: str
    stage: str
    reason: str


@dataclass
class RunSummary:
    """What a run did. ``done``/``failed`` count videos (failed: at least one feature set failed);
    ``skipped``: videos of the selection that were complete already."""

    dataset: str
    store: str
    features: list[str]
    selected: int = 0
    planned: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    left_by_limit: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    load_seconds: float = 0.0
    failures: list[FailureRecord] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    packed: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None

    @property
    def work_seconds(self) -> float:
        """Wall-clock seconds after planning and model loading."""
        return max(0.0, self.wall_seconds - self.load_seconds)

    @property
    def videos_per_second(self) -> float:
        return (self.done + self.failed) / self.work_seconds if self.work_seconds > 0 else 0.0

    @property
    def audio_per_second(self) -> float:
        """Audio seconds processed per wall-clock second (x real time), model loading left out."""
        return self.audio_seconds / self.work_seconds if self.work_seconds > 0 else 0.0

    def text(self) -> str:
        shard = f" (shard {self.shard[0]}/{self.shard[1]})" if self.shard else ""
        lines = [
            f"{self.dataset} -> {self.store}{shard}: features {', '.join(self.features)}",
            f"done {self.done}, skipped {self.skipped}, failed {self.failed} of {self.selected} selected videos"
            + (f" ({self.left_by_limit} left by --limit)" if self.left_by_limit else ""),
            f"{self.wall_seconds:.1f} s ({self.load_seconds:.1f} s planning and loading): {self.videos_per_second:.2f} videos/s, "
            f"{self.audio_seconds:.1f} s of audio = {self.audio_per_second:.1f} audio s/s",
        ]
        if self.packed:
            lines.append(f"packed: {', '.join(self.packed)}")
        if self.failures:
            lines.append(f"{len(self.failures)} failure(s) (retried on the next run):")
            for f in self.failures[:50]:
                lines.append(f"  {f.video_id} [{f.feature}] {f.stage}: {f.reason}")
            if len(self.failures) > 50:
                lines.append(f"  ... and {len(self.failures) - 50} more (see `store.failures(dataset, feature)`)")
        return "\n".join(lines)


# --------------------------------------------------------------------------- writer


class _Writer:
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


# --------------------------------------------------------------------------- runner


def _audio_size(entry: Any) -> int:
    """Bytes of a video's audio file (0 when missing): the order that buckets clips by length."""
    try:
        return os.stat(entry.audio).st_size if entry.audio is not None else 0
    except OSError:
        return 0


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class Runner:
    """One extraction run over a dataset's entries; see the module docstring. Use :func:`run_extraction`."""

    def __init__(
        self,
        store: Any,
        dataset: str,
        entries: Sequence[Any],
        extractors: Sequence[Extractor],
        options: RunOptions | None = None,
        *,
        limit: int | None = None,
        shard: tuple[int, int] | None = None,
    ) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ExtractionError(f"limit must be an int >= 0. Got {limit!r} instead.")
        self.store = store
        self.dataset = dataset
        self.entries = sorted(entries, key=lambda e: e.id)
        self.extractors = list(extractors)
        self.options = options or RunOptions()
        self.limit = limit
        self.shard = shard
        self.hashes = [e.config_hash for e in self.extractors]
        self.outputs = [list(e.output_names) for e in self.extractors]
        self._feature_hash = {name: h for names, h in zip(self.outputs, self.hashes, strict=True) for name in names}

    # -- planning ----------------------------------------------------------------------

    def check_configs(self) -> None:
        """Refuse before any work when a feature set exists with another config hash."""
        from affectstore.store import ConfigMismatchError

        existing = set(self._store_features())
        for extractor, names, h in zip(self.extractors, self.outputs, self.hashes, strict=True):
            for name in names:
                if name not in existing:
                    continue
                stored = self.store.provenance(self.dataset, name)
                if stored.get("config_hash") == h:
                    continue
                try:  # the store's own refusal, so its message (and advice) is the one users see
                    self.store.create_feature(
                        self.dataset, name, {**stored, "config_hash": h, "created": stored.get("created")}
                    )
                except ConfigMismatchError as error:
                    diff = _config_diff(stored.get("config") or {}, extractor.config.to_dict(), extractor.config.NON_OUTPUT_FIELDS)
                    raise ConfigMismatchError(f"{error} Settings that differ: {diff}.") from None

    def _store_features(self) -> list[str]:
        from affectstore.store import UnknownDatasetError

        try:
            return self.store.features(self.dataset)
        except UnknownDatasetError:
            return []

    def _complete(self, feature: str) -> set[str]:
        """Ids with a completion mark (the store ignores marks a killed writer left half-written)."""
        return set(self.store.completed(self.dataset, feature))

    def plan(self) -> tuple[list[Any], dict[str, dict[int, list[str]]], RunSummary]:
        """Entries to process and, per video, extractor index -> outputs still to write."""
        summary = RunSummary(self.dataset, self.store.location, [n for names in self.outputs for n in names], shard=self.shard)
        selection = self.entries
        if self.shard is not None:
            index, total = self.shard
            selection = selection[index::total]
        summary.selected = len(selection)
        existing = set(self._store_features())
        done = {name: self._complete(name) if name in existing else set() for names in self.outputs for name in names}
        todo: list[Any] = []
        needs: dict[str, dict[int, list[str]]] = {}
        for entry in selection:
            need = {}
            for i, names in enumerate(self.outputs):
                missing = [n for n in names if entry.id not in done[n]]
                if missing:
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
        todo, needs, summary = self.plan()
        logger.info(
            "%s: %d videos selected, %d complete already, %d to extract with %s",
            self.dataset, summary.selected, summary.skipped, len(todo), ", ".join(e.prefix for e in self.extractors),
        )
        used = sorted({i for e in todo for i in needs[e.id]})
        for i in used:
            load_extractor(self.extractors[i])
            for name, prov in store_provenance(self.extractors[i]).items():
                self.store.create_feature(self.dataset, name, prov)
        summary.load_seconds = time.perf_counter() - started
        self._needs = needs
        self._summary = summary
        self._failed: dict[str, dict[str, FailureRecord]] = {}
        on_gpu = any(str(getattr(self.extractors[i].config, "device", "cpu")).startswith("cuda") for i in used)
        threads = self.options.writer_thread if self.options.writer_thread is not None else on_gpu
        self._prefetch = self.options.prefetch if self.options.prefetch is not None else (8 if on_gpu else 0)
        self._writer = _Writer(threads)
        self._bar = _progress(len(todo), self.options.progress, self.dataset)
        try:
            self._run_entries(todo)
        finally:
            self._writer.close()
            self._bar.close()
        for (kind, video_id, feature), error in self._writer.take_errors():
            if kind == "write":
                self._fail_feature(video_id, feature, "write", _reason(error), inline=True)
            else:
                logger.warning("could not record the failure of %s [%s]: %s", video_id, feature, _reason(error))
        summary.failures = [f for per in self._failed.values() for f in per.values()]
        summary.failed = len(self._failed)
        summary.done = len(todo) - summary.failed
        for entry in todo:
            for i, names in needs[entry.id].items():
                for name in names:
                    if name not in self._failed.get(entry.id, {}):
                        summary.written[name] = summary.written.get(name, 0) + 1
        if self.options.pack and summary.left_by_limit == 0:
            self._pack(summary)
        summary.wall_seconds = time.perf_counter() - started
        logger.info(
            "%s: done %d, skipped %d, failed %d in %.1f s (%.1f audio s/s)",
            self.dataset, summary.done, summary.skipped, summary.failed, summary.wall_seconds, summary.audio_per_second,
        )
        return summary

    def _run_entries(self, todo: list[Any]) -> None:
        opts = self.options
        if opts.by_size:
            todo = sorted(todo, key=_audio_size)
        batch = max((getattr(self.extractors[i].config, "batch_size", 1) for i in range(len(self.extractors))), default=1)
        pool_size = opts.pool_size or 4 * batch
        pool_samples = int(opts.pool_seconds * SAMPLE_RATE)
        spill_above = int(opts.stream_above_s * SAMPLE_RATE)
        pool: list[tuple[Any, DecodedAudio]] = []
        pooled = 0
        for entry, decoded in self._decoded(todo, spill_above):
            if isinstance(decoded, BaseException):
                self._fail_video(entry, "decode", _reason(decoded))
                self._advance(1)
                continue
            self._summary.audio_seconds += decoded.stats.seconds
            if decoded.long:
                try:
                    self._stream_one(entry, decoded)
                finally:
                    decoded.close()
                self._advance(1)
                continue
            pool.append((entry, decoded))
            pooled += decoded.stats.n_samples
            if len(pool) >= pool_size or pooled >= pool_samples:
                self._run_pool(pool)
                pool, pooled = [], 0
        if pool:
            self._run_pool(pool)

    def _advance(self, n: int) -> None:
        self._bar.update(n)
        elapsed = self._bar.format_dict.get("elapsed") or 0.0
        if elapsed > 0:
            self._bar.set_postfix(failed=len(self._failed), audio=f"{self._summary.audio_seconds / elapsed:.0f}s/s", refresh=False)

    def _decoded(self, todo: list[Any], spill_above: int) -> Iterator[tuple[Any, DecodedAudio | BaseException]]:
        """Decoded audio per entry in order; decoding runs ``prefetch`` videos ahead on a thread."""

        def decode(entry: Any) -> DecodedAudio | BaseException:
            from affectstore.media import MediaError

            if entry.audio is None:
                return ExtractionError(
                    f"no audio file for video {entry.id!r} in the dataset (missing from its layout); "
                    "add the file or leave the video out"
                )
            try:
                return decode_audio(entry.audio, spill_above, self.options.block_s, self.options.spill_dir)
            except (MediaError, OSError) as error:
                return error
            except Exception as error:  # noqa: BLE001 - any decode error is this video's; raised on the
                # prefetch thread it would end the thread and leave the run waiting forever
                logger.warning("unexpected error decoding %s", entry.id, exc_info=True)
                return error

        if self._prefetch == 0:
            for entry in todo:
                yield entry, decode(entry)
            return
        results: queue.Queue = queue.Queue(maxsize=self._prefetch)
        stop = threading.Event()

        def produce() -> None:
            for entry in todo:
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
                if item is not None and isinstance(item[1], DecodedAudio):
                    item[1].close()
            thread.join()

    def _run_pool(self, pool: list[tuple[Any, DecodedAudio]]) -> None:
        for i, extractor in enumerate(self.extractors):
            members = [(e, d) for e, d in pool if i in self._needs[e.id]]
            if not members:
                continue
            valid: list[tuple[Any, np.ndarray]] = []
            for entry, decoded in members:
                try:
                    valid.append((entry, extractor.validate(decoded.waveform)))
                except InputError as error:
                    self._fail_extractor(entry.id, i, "input", _reason(error))
            if not valid:
                continue
            try:
                results = extractor.extract_batch([w for _, w in valid])
            except Exception as error:  # noqa: BLE001 - isolate the clip that fails, below
                if len(valid) == 1:
                    logger.warning("%s failed on %s", extractor.prefix, valid[0][0].id, exc_info=True)
                    self._fail_extractor(valid[0][0].id, i, "model", _reason(error))
                    continue
                logger.info("%s: batch of %d failed (%s); retrying clip by clip", extractor.prefix, len(valid), error)
                results = []
                kept = []
                for entry, wave in valid:
                    try:
                        results.append(extractor.extract(wave))
                        kept.append((entry, wave))
                    except Exception as one_error:  # noqa: BLE001 - recorded for this video
                        logger.warning("%s failed on %s", extractor.prefix, entry.id, exc_info=True)
                        self._fail_extractor(entry.id, i, "model", _reason(one_error))
                valid = kept
            for (entry, _), result in zip(valid, results, strict=True):
                self._emit(entry.id, i, result)
        for _, decoded in pool:
            decoded.close()
        self._advance(len(pool))

    def _stream_one(self, entry: Any, decoded: DecodedAudio) -> None:
        """A long clip: every extractor it needs reads the same blocks through ``open_stream``."""
        streams = {}
        parts: dict[int, dict[str, list[Features]]] = {}
        for i in self._needs[entry.id]:
            try:
                streams[i] = self.extractors[i].open_stream(decoded.stats)
                parts[i] = {}
            except InputError as error:
                self._fail_extractor(entry.id, i, "input", _reason(error))
            if i in streams and not self.extractors[i].bounded_stream:
                logger.info("%s: %s holds all of %s (%.0f s) in memory", self.dataset, self.extractors[i].prefix, entry.id, decoded.stats.seconds)

        def collect(i: int, outputs: dict[str, Features]) -> None:
            for name, feats in outputs.items():
                parts[i].setdefault(name, []).append(feats)

        for block in decoded.blocks(max(1, int(self.options.block_s * SAMPLE_RATE))):
            for i, stream in list(streams.items()):
                try:
                    collect(i, stream.push(block))
                except Exception as error:  # noqa: BLE001 - recorded for this video and extractor
                    logger.warning("%s failed on %s", self.extractors[i].prefix, entry.id, exc_info=True)
                    self._fail_extractor(entry.id, i, "input" if isinstance(error, InputError) else "model", _reason(error))
                    del streams[i]
        for i, stream in streams.items():
            try:
                collect(i, stream.close())
            except Exception as error:  # noqa: BLE001
                logger.warning("%s failed on %s", self.extractors[i].prefix, entry.id, exc_info=True)
                self._fail_extractor(entry.id, i, "input" if isinstance(error, InputError) else "model", _reason(error))
                continue
            self._emit(entry.id, i, {name: Features.concatenate(chunks) for name, chunks in parts.pop(i).items()})

    # -- writing and failures --------------------------------------------------------------

    def _emit(self, video_id: str, i: int, result: Mapping[str, Features]) -> None:
        h = self.hashes[i]
        for name in self._needs[video_id][i]:
            feats = result.get(name)
            if feats is None:
                self._fail_feature(video_id, name, "model", f"extractor {self.extractors[i].prefix!r} returned no output {name!r}")
                continue
            values, times = feats.values, feats.times

            def job(name: str = name, values: np.ndarray = values, times: np.ndarray = times) -> None:
                self.store.write_video(self.dataset, name, video_id, values, times, config_hash=h)

            self._writer.submit(("write", video_id, name), job)

    def _fail_video(self, entry: Any, stage: str, reason: str) -> None:
        for i in self._needs[entry.id]:
            self._fail_extractor(entry.id, i, stage, reason)

    def _fail_extractor(self, video_id: str, i: int, stage: str, reason: str) -> None:
        for name in self._needs[video_id].get(i, []):
            self._fail_feature(video_id, name, stage, reason)

    def _fail_feature(self, video_id: str, feature: str, stage: str, reason: str, *, inline: bool = False) -> None:
        self._failed.setdefault(video_id, {})[feature] = FailureRecord(video_id, feature, stage, reason)
        logger.debug("%s [%s] failed at %s: %s", video_id, feature, stage, reason)
        h = self._feature_hash[feature]

        def job() -> None:
            self.store.record_failure(self.dataset, feature, video_id, stage, reason, config_hash=h)

        if inline:
            try:
                job()
            except Exception:  # noqa: BLE001 - the failure is in the summary either way
                logger.warning("could not record the failure of %s [%s]", video_id, feature, exc_info=True)
        else:
            self._writer.submit(("record", video_id, feature), job)

    def _pack(self, summary: RunSummary) -> None:
        """Pack each feature set whose whole selection (every shard) is complete."""
        wanted = {e.id for e in self.entries}
        for names in self.outputs:
            for name in names:
                if name not in self._store_features():
                    continue
                complete = self._complete(name)
                if not wanted <= complete:
                    if self.shard is None:
                        logger.info("not packing %s/%s: %d of %d videos complete", self.dataset, name, len(wanted & complete), len(wanted))
                    continue
                if not summary.written.get(name):
                    continue  # nothing new: the pack (if any) is current or load_feature builds it
                if self.store.pack(self.dataset, name) is not None:
                    summary.packed.append(name)


def _config_diff(stored: Mapping[str, Any], new: Mapping[str, Any], ignore: Iterable[str]) -> str:
    ignore = set(ignore)
    keys = sorted((set(stored) | set(new)) - ignore)
    changes = [f"{k}: stored {stored.get(k)!r}, requested {new.get(k)!r}" for k in keys if stored.get(k) != new.get(k)]
    return "; ".join(changes) or "none in the config (the extractor version differs)"


def _progress(total: int, enabled: bool, dataset: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", desc=f"extract {dataset}", disable=not enabled, dynamic_ncols=True, smoothing=0.1)


# --------------------------------------------------------------------------- entry points


def run_extraction(
    dataset: str,
    root: str | Path,
    features: Sequence[str | Extractor],
    store: str | Path | Any,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    store_dataset: str | None = None,
    split: str | None = None,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
    shard: str | tuple[int, int] | bool | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    options: RunOptions | None = None,
) -> RunSummary:
    """Extract ``features`` for the videos of dataset ``dataset`` at ``root`` into ``store``.

    ``features``: extractor names, recipe prefixes (defined in ``settings``) or extractor
    instances; ``settings``: per-feature config tables. ``store_dataset``: the dataset's
    group in the store (default: ``dataset``). ``shard``: ``"I/N"``, ``(I, N)``, False for
    none, or None to read the SLURM array variables.
    """
    from affectstore.datasets import get_adapter
    from affectstore.store import FeatureStore

    if not features:
        raise ExtractionError(f"No features requested. Known extractors: {', '.join(available_extractors())}.")
    extractors = build_extractors(features, settings, device=device, dtype=dtype, batch_size=batch_size)
    adapter = get_adapter(dataset, root, **dict(dataset_options or {}))
    entries = adapter.manifest(split)
    if videos:
        entries = [adapter.entry(v) for v in dict.fromkeys(videos)]
        if split is not None:
            outside = [e.id for e in entries if e.split != split]
            if outside:
                raise ExtractionError(f"video(s) {', '.join(map(repr, outside))} are not in split {split!r}.")
    the_store = store if hasattr(store, "write_video") else FeatureStore.open(store, mode="a")
    runner = Runner(
        the_store,
        store_dataset or dataset,
        entries,
        extractors,
        options,
        limit=limit,
        shard=None if shard is False else parse_shard(shard),  # type: ignore[arg-type]
    )
    return runner.run()


def _parse_value(text: str) -> Any:
    """A command-line setting value: a TOML value (6, 2.5, true, "x", [1, 2]) or else the plain text."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_settings(pairs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["wav2vec2.layer=6", "vad.model=/models/vad"]`` -> ``{"wav2vec2": {"layer": 6}, "vad": {...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        feature, dot, setting = key.strip().partition(".")
        if not sep or not dot or not feature or not setting:
            raise ExtractionError(f"--set must look like FEATURE.SETTING=VALUE (e.g. wav2vec2.layer=6). Got {pair!r} instead.")
        out.setdefault(feature, {})[setting] = _parse_value(value.strip())
    return out


def extract_command(
    dataset: str,
    root: str | None = None,
    *,
    features: str | Sequence[str] | None = None,
    store: str | None = None,
    recipe: str | Path | None = None,
    dataset_options: Iterable[str] = (),
    settings: Iterable[str] = (),
    split: str | None = None,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
    shard: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    pack: bool | None = None,
    environ: Mapping[str, str] = os.environ,
) -> RunSummary:
    """What ``affect extract`` does: merge recipe, environment and command line, then :func:`run_extraction`.

    Precedence: command line > DATA_ROOT (root only) > recipe. ``features`` is a comma list;
    default: every extractor of the recipe. ``settings``: ``FEATURE.SETTING=VALUE`` pairs;
    ``dataset_options``: adapter ``key=value`` pairs.
    """
    from affectstore.datasets.check import parse_options
    from affectstore.extract.recipe import dataset_root, load_recipe

    plan = load_recipe(recipe) if recipe is not None else None
    if plan is not None and plan.dataset and plan.dataset != dataset:
        raise ExtractionError(f"Recipe {plan.path} is for dataset {plan.dataset!r}, not {dataset!r}. Pass DATASET {plan.dataset}.")
    root = dataset_root(root, plan, environ)
    store = store or (plan.store if plan else None)
    if not store:
        raise ExtractionError("No store given: pass --store PATH (or set `store = ...` in the recipe).")
    if isinstance(features, str):
        names = [f.strip() for f in features.split(",") if f.strip()]
    else:
        names = list(features or [])
    if not names:
        names = plan.features if plan else []
    if not names:
        raise ExtractionError(
            f"No features given: pass --features a,b,c. Known extractors: {', '.join(available_extractors())}."
        )
    tables: dict[str, dict[str, Any]] = {}
    if plan is not None:
        for spec in plan.extractors:
            tables[spec.feature] = {"extractor": spec.extractor, **spec.settings}
    for feature, table in parse_settings(settings).items():
        if feature not in names:
            raise ExtractionError(f"--set names feature {feature!r}, which is not requested. Requested: {', '.join(names)}.")
        tables.setdefault(feature, {}).update(table)
    run = dict(plan.run) if plan else {}
    options = RunOptions(
        pool_size=run.get("pool_size"),
        stream_above_s=run.get("stream_above_s", RunOptions.stream_above_s),
        block_s=run.get("block_s", RunOptions.block_s),
        prefetch=run.get("prefetch", RunOptions.prefetch),
        writer_thread=run.get("writer_thread", RunOptions.writer_thread),
        pack=run.get("pack", True) if pack is None else pack,
        progress=progress,
    )
    opts = dict(plan.dataset_options) if plan else {}
    opts.update(parse_options(dataset_options))
    return run_extraction(
        dataset,
        root,
        names,
        store,
        settings=tables,
        dataset_options=opts,
        store_dataset=plan.name if plan else None,
        split=split or (plan.split if plan else None),
        videos=videos,
        limit=limit if limit is not None else run.get("limit"),
        shard=parse_shard(shard, environ) or False,
        device=device or run.get("device"),
        dtype=dtype or run.get("dtype"),
        batch_size=batch_size or run.get("batch_size"),
        options=options,
    )
