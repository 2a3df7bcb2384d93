"""Run options, shard and setting parsing, and building the extractors a run asks for."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from affectstore.extract.base import Extractor
from affectstore.extract.errors import ExtractionError, MissingDependencyError, ModelLoadError, UnknownExtractorError
from affectstore.extract.registry import available_extractors, create_extractor, did_you_mean, get_extractor_class

logger = logging.getLogger(__name__)

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
DTYPES = ("float32", "float16", "bfloat16")
FACE_SOURCES = ("auto", "dataset", "detect")


@dataclass(frozen=True)
class RunOptions:
    """How the runner works; none of these change the numbers written.

    - ``pool_size``: videos decoded and passed to ``extract_batch`` together (None: 4 x the
      largest extractor batch size); ``pool_seconds`` caps their total audio and
      ``pool_faces`` their total face crops.
    - ``stream_above_s``: audio clips longer than this go through the streaming path;
      ``face_chunk``: a video with more face crops (or frames) than this streams in chunks of
      this many.
    - ``block_s``: audio decode and stream block length.
    - ``faces``: where face crops come from: ``auto`` (the dataset's own crops where it has
      them, else detected in the video), ``dataset`` (its crops only), ``detect`` (always
      detect, ignoring shipped crops).
    - ``isolate``: decode audio in a child process (a file that crashes FFmpeg costs one video).
    - ``jobs``: worker processes for passes whose extractors all compute on the CPU (each loads
      the models once and writes its videos itself; see :mod:`.workers`). 1: in this process.
    - ``dask``: address of a Dask scheduler; ``workers``: size of a LocalCluster on this machine.
      Either runs every pass as per-video tasks on the cluster's workers (see :mod:`.cluster`).
    - ``prefetch``: videos decoded ahead on a background thread (0: decode inline).
    - ``writer_thread``: write on a background thread, overlapping compute.
      Both default (None) to on when an extractor runs on CUDA, where the GPU computes
      while Python threads decode and write, and off on CPU, where they measured slower
      (benchmarks/extract_cpu.py: the threads compete for the GIL and the cores with torch).
    - ``pack``: pack feature sets whose selection is complete at the end.
    - ``hash_media``: record the SHA-256 of every input file in its video's marks, and one over
      the selection in the provenance (sizes are always recorded); costs one read of the media.
    - ``progress``: show a tqdm bar on stderr.
    - ``spill_dir``: folder for the temporary files of long clips (None: the system's).
    - ``by_size``: process videos in order of their input file's size (a cheap proxy of
      duration), so each pool holds videos of similar length and batches pad little.
    """

    pool_size: int | None = None
    pool_seconds: float = 600.0
    pool_faces: int = 2048
    stream_above_s: float = 60.0
    face_chunk: int = 256
    block_s: float = 30.0
    faces: str = "auto"
    jobs: int = 1
    dask: str | None = None
    workers: int | None = None
    isolate: bool = True
    prefetch: int | None = None
    writer_thread: bool | None = None
    pack: bool = True
    hash_media: bool = False
    progress: bool = True
    spill_dir: str | None = None
    by_size: bool = True

    def __post_init__(self) -> None:
        for name in ("pool_size",):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or an int >= 1. Got {value!r} instead.")
        if self.workers is not None and (isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1):
            raise ValueError(f"workers must be None or an int >= 1. Got {self.workers!r} instead.")
        if self.dask is not None and self.workers is not None:
            raise ValueError("Give --dask ADDRESS (a running cluster) or --workers N (a cluster on this machine), not both.")
        for name in ("pool_faces", "face_chunk", "jobs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1. Got {value!r} instead.")
        for name in ("pool_seconds", "stream_above_s", "block_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a number of seconds > 0. Got {value!r} instead.")
        if self.prefetch is not None and (isinstance(self.prefetch, bool) or not isinstance(self.prefetch, int) or self.prefetch < 0):
            raise ValueError(f"prefetch must be None (auto) or an int >= 0. Got {self.prefetch!r} instead.")
        if self.faces not in FACE_SOURCES:
            raise ValueError(f"faces must be one of {', '.join(FACE_SOURCES)}. Got {self.faces!r} instead.")


#: RunOptions fields a recipe's [run] table may set.
RUN_OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(RunOptions) if f.name not in ("progress",))


def parse_shard(shard: str | tuple[int, int] | None, environ: Mapping[str, str] = os.environ) -> tuple[int, int] | None:
    """A shard as ``(index, count)`` with a 0-based index, or None for the whole selection.

    ``"I/N"`` is what users type: 1-based, I in 1..N, as SLURM arrays usually number their
    tasks (``"1/4"`` .. ``"4/4"``); anything else is refused. A tuple is taken as the 0-based
    ``(index, count)`` itself. None reads SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT, counted
    from SLURM_ARRAY_TASK_MIN, and gives None outside an array job.
    """
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
        if not (total >= 1 and 0 <= index < total):
            raise ExtractionError(
                f"SLURM_ARRAY_TASK_ID={task} is not within the array of {count} tasks from SLURM_ARRAY_TASK_MIN="
                f"{environ.get('SLURM_ARRAY_TASK_MIN', '0')}; pass --shard I/N (1 <= I <= N) instead."
            )
        return index, total
    if isinstance(shard, tuple):
        index, total = shard
        if not (isinstance(index, int) and isinstance(total, int) and total >= 1 and 0 <= index < total):
            raise ExtractionError(f"shard (index, count) must have 0 <= index < count. Got {shard!r} instead.")
        return index, total
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(shard))
    if match is None:
        raise ExtractionError(f"--shard must look like I/N with 1 <= I <= N (e.g. 1/4 .. 4/4). Got {shard!r} instead.")
    number, total = int(match.group(1)), int(match.group(2))
    if not (total >= 1 and 1 <= number <= total):
        raise ExtractionError(
            f"--shard I/N counts from 1: I must be in 1..{total} (e.g. 1/{max(total, 1)} .. {total}/{total}). Got {shard!r} instead."
        )
    return number - 1, total


def parse_value(text: str) -> Any:
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
        out.setdefault(feature, {})[setting] = parse_value(value.strip())
    return out


def build_extractor(
    feature: str,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
) -> Extractor[Any]:
    """One extractor (not loaded) for ``feature``: a registered name, or a prefix defined in ``settings``
    with an ``extractor`` key (as recipes do). ``device``, ``dtype`` and ``batch_size`` override the
    extractor's settings where it has them."""
    settings = settings or {}
    table = dict(settings.get(feature, {}))
    name = table.pop("extractor", feature)
    if name != feature:
        table.setdefault("name", feature)
    try:
        cls = get_extractor_class(name)
    except UnknownExtractorError as error:
        defined = sorted(k for k, v in settings.items() if isinstance(v, Mapping))
        extra = f" The recipe defines: {', '.join(defined)}." if defined else ""
        hint = " (planned, not available yet)" if "planned" in str(error) else did_you_mean(feature, available_extractors() + defined)
        raise UnknownExtractorError(
            f"Unknown feature {feature!r}{hint}. Known extractors: {', '.join(available_extractors())}.{extra}"
        ) from None
    for key, value in (("device", device), ("dtype", dtype), ("batch_size", batch_size)):
        if value is not None and takes_option(cls, key, value):
            table[key] = value
    try:
        return create_extractor(name, table)
    except (TypeError, ValueError) as error:
        raise ExtractionError(f"Bad settings for feature {feature!r} (extractor {name!r}): {error}") from error


def takes_option(cls: type[Extractor[Any]], key: str, value: Any) -> bool:
    """Whether a run-wide ``--device``/``--dtype``/``--batch-size`` applies to an extractor class
    (a CPU-only library keeps device cpu, so its provenance never records a device it did not use)."""
    if key not in cls.config_class.field_names():
        return False
    if key == "device":
        return str(value).partition(":")[0] in cls.devices
    return True


def build_extractors(
    features: Sequence[str | Extractor[Any]],
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    explicit: Iterable[str] = (),
) -> list[Extractor[Any]]:
    """Extractor instances (not loaded) for ``features`` (names, recipe prefixes or instances).

    ``device``, ``dtype`` and ``batch_size`` apply where an extractor takes them. ``explicit``
    names those the user typed: one that no requested extractor takes is an error (it would
    change nothing), one that some ignore is logged once."""
    if device is not None and not DEVICE_PATTERN.match(device):
        raise ExtractionError(f"device must be cpu, cuda or cuda:K (e.g. cuda:0). Got {device!r} instead.")
    if dtype is not None and dtype not in DTYPES:
        raise ExtractionError(f"dtype must be one of {', '.join(DTYPES)}. Got {dtype!r} instead.")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ExtractionError(f"batch size must be an int >= 1. Got {batch_size!r} instead.")
    out = [
        f if isinstance(f, Extractor) else build_extractor(f, settings, device=device, dtype=dtype, batch_size=batch_size)
        for f in features
    ]
    check_unique_outputs(out)
    for key, value in (("device", device), ("dtype", dtype)):
        if value is None or key not in explicit or (key == "device" and value == "cpu"):
            continue
        ignoring = [e.prefix for e in out if not takes_option(type(e), key, value)]
        flag = "--" + key
        if ignoring and len(ignoring) == len(out):
            what = "can run on " + value if key == "device" else "has a compute dtype"
            raise ExtractionError(
                f"{flag} {value}: none of the requested extractors ({', '.join(ignoring)}) {what}; it would change "
                f"nothing. Leave {flag} out."
            )
        if ignoring:
            logger.warning("%s %s applies to %s; %s ignore it", flag, value,
                           ", ".join(e.prefix for e in out if e.prefix not in ignoring), ", ".join(ignoring))
    return out


def check_unique_outputs(extractors: Sequence[Extractor[Any]]) -> None:
    """Refuse two extractors that would write the same feature set."""
    names = [n for e in extractors for n in e.output_names]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ExtractionError(
            f"Feature set name(s) {', '.join(map(repr, duplicates))} would be written by two extractors. Give one of them "
            "another name (setting name = '...', or a recipe table with extractor = '...')."
        )


def load_extractor(extractor: Extractor[Any]) -> None:
    """Load the model once; a model that cannot load becomes one ExtractionError saying how to provide it."""
    try:
        extractor.load()
    except ModelLoadError as error:
        model = getattr(extractor.config, "model", None)
        advice = error.advice or (
            f"Provide it as a local folder (config.json + weights), e.g. --set {extractor.prefix}.model=/path/to/model "
            f"or `model = \"/path/to/model\"` in the recipe's [extractors.{extractor.prefix}] table, or put the hub "
            "snapshot in the Hugging Face cache (HF_HOME / HF_HUB_CACHE, e.g. `huggingface-cli download "
            f"{model}` on a machine with internet, then copy the cache) and keep HF_HUB_OFFLINE=1."
        )
        raise ExtractionError(f"Extractor {extractor.prefix!r} could not load model {model!r}: {error}\n{advice}") from error
    except MissingDependencyError as error:
        raise ExtractionError(str(error)) from error
