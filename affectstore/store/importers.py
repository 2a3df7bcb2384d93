"""`affect store import`: features computed elsewhere (per-video .npy, .pt, HDF5, a pickled dict) into a store.

Each video becomes a store video like an extracted one (arrays, then its completion mark),
and the feature set's provenance records what the user says about where the numbers came
from (``--provenance key=value``, ``--config JSON``) plus the source file and format; its
config hash is the hash of that config, so importing the same thing again resumes and a
different config is refused like a changed extractor.

Sources and the video ids they give:

- a folder of ``.npy`` files: one per video, the id is the path below the folder without
  ``.npy`` (``82557/Visite 1/q 1.npy`` -> ``82557/Visite 1/q 1``); loaded without pickle;
- a ``.pt`` file holding ``{id: tensor}`` (or ``{id: {"values": ..., "times": ...}}``), or a
  folder of per-video ``.pt`` files; loaded with ``torch.load(weights_only=True)``, which
  refuses anything but tensors and plain containers;
- an HDF5 file (``.h5``, ``.hdf5``): every dataset is a video at its path, or every group
  holding a ``values`` dataset (and optionally ``times``);
- a pickled dict (``.pkl``, ``.pickle``) like the .pt one, only with ``trust_pickle=True``:
  unpickling runs code from the file, so it warns.

A 1-D array is one vector per video (kind "video"); a T x D array is frames at ``rate`` Hz
(times ``arange(T) / rate``), or rows at the ``times`` the source gives (kind "segments").
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectstore.store.errors import StoreError
from affectstore.store.provenance import config_hash
from affectstore.store.store import FeatureStore

logger = logging.getLogger(__name__)

FORMATS = ("npy", "pt", "hdf5", "pickle")
_SUFFIXES = {".npy": "npy", ".pt": "pt", ".pth": "pt", ".h5": "hdf5", ".hdf5": "hdf5", ".pkl": "pickle", ".pickle": "pickle"}


class ImportSourceError(StoreError, ValueError):
    """A source that cannot be imported: the message names the file and what was expected."""


@dataclass(frozen=True)
class ImportSummary:
    """What `import_features` wrote."""

    dataset: str
    feature: str
    format: str
    imported: int
    already: int
    config_hash: str


def parse_provenance(items: list[str]) -> dict[str, str]:
    """``key=value`` strings as a dict (what the user says about the source)."""
    from affectstore.datasets.check import parse_key_values

    return parse_key_values(items, "--provenance must be KEY=VALUE, e.g. model=wav2vec2-large")


def detect_format(source: Path) -> str:
    """The import format of ``source`` from its suffix, or from what a folder holds."""
    if source.is_dir():
        found = {_SUFFIXES.get(p.suffix.lower()) for p in source.rglob("*") if p.is_file()}
        found &= {"npy", "pt"}
        if len(found) == 1:
            return found.pop()
        raise ImportSourceError(
            f"{source} is a folder; it must hold per-video .npy or .pt files (one kind). "
            f"Found {sorted(f for f in found if f) or 'neither'}. Pass --format to choose."
        )
    fmt = _SUFFIXES.get(source.suffix.lower())
    if fmt is None or fmt == "npy":
        raise ImportSourceError(
            f"Cannot tell the format of {source}: use a folder of .npy files, a .pt, .h5/.hdf5 or .pkl file, "
            f"or pass --format ({', '.join(FORMATS)})."
        )
    return fmt


def import_features(
    store: str | FeatureStore,
    dataset: str,
    feature: str,
    source: str | Path,
    *,
    fmt: str | None = None,
    rate: float | None = None,
    dtype: str = "float32",
    provenance: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    trust_pickle: bool = False,
    columns: list[str] | None = None,
) -> ImportSummary:
    """Import the per-video features in ``source`` as ``dataset/feature`` of ``store`` (see the module doc)."""
    source = Path(source).expanduser()
    if not source.exists():
        raise ImportSourceError(f"No file or folder at {source}.")
    fmt = fmt or detect_format(source)
    if fmt not in FORMATS:
        raise ImportSourceError(f"--format must be one of {', '.join(FORMATS)}. Got {fmt!r} instead.")
    if fmt == "pickle" and not trust_pickle:
        raise ImportSourceError(
            f"{source} is a pickle: loading it runs whatever code it holds. Import it only if you trust its maker, "
            "with --trust-pickle; better, ask for .npy, .pt or HDF5 files."
        )
    if rate is not None and not rate > 0:
        raise ImportSourceError(f"--rate must be a positive number of Hz. Got {rate!r} instead.")
    videos = list(_read(source, fmt))
    if not videos:
        raise ImportSourceError(f"{source} holds no arrays to import (format {fmt}).")
    first = _as_rows(videos[0][1], videos[0][2], rate, f"{source}: {videos[0][0]!r}")
    kind = "video" if np.ndim(videos[0][1]) == 1 else ("frames" if rate is not None else "segments")
    if kind == "segments" and videos[0][2] is None:
        raise ImportSourceError(
            f"{source}: video {videos[0][0]!r} is a {np.shape(videos[0][1])} array without times; pass --rate HZ "
            "(frames at a fixed rate) or store a 'times' array beside its 'values'."
        )
    user_config = dict(config or {})
    cfg = user_config or {"source": source.name, "format": fmt}
    h = config_hash(cfg)
    prov: dict[str, Any] = {
        "extractor": f"import:{fmt}", "extractor_version": "1", "config": cfg, "config_hash": h,
        "dim": int(first[0].shape[1]), "dtype": dtype, "kind": kind, "rate": rate if kind == "frames" else None,
        "import": {"source": str(source), "format": fmt, "provenance": dict(provenance or {})},
    }
    if columns:
        if len(columns) != prov["dim"]:
            raise ImportSourceError(f"--columns names {len(columns)} columns; the arrays have {prov['dim']}.")
        prov["columns"] = list(columns)
    target = store if isinstance(store, FeatureStore) else FeatureStore.open(store, mode="a")
    target.create_feature(dataset, feature, prov)
    imported = already = 0
    for video_id, values, times in videos:
        if target.is_done(dataset, feature, video_id, h):
            already += 1
            continue
        rows, stamps = _as_rows(values, times, rate, f"{source}: {video_id!r}")
        target.write_video(dataset, feature, video_id, rows, stamps, config_hash=h)
        imported += 1
    logger.info("imported %d videos (%d already there) from %s into %s/%s", imported, already, source, dataset, feature)
    return ImportSummary(dataset, feature, fmt, imported, already, h)


def _as_rows(values: Any, times: Any, rate: float | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(values)
    if arr.ndim == 1:
        return arr.reshape(1, -1), np.zeros(1) if times is None else np.asarray(times, dtype=np.float64).reshape(1)
    if arr.ndim != 2:
        raise ImportSourceError(f"{where}: arrays must be 1-D (one vector) or 2-D (T x D). Got shape {arr.shape}.")
    if times is not None:
        return arr, np.asarray(times, dtype=np.float64).reshape(-1)
    if rate is None:
        raise ImportSourceError(f"{where}: a {arr.shape} array without times; pass --rate HZ.")
    return arr, np.arange(len(arr), dtype=np.float64) / rate


def _split(item: Any, where: str) -> tuple[Any, Any]:
    """(values, times) of one video's entry: an array, or a mapping with 'values' (and 'times')."""
    if isinstance(item, dict):
        if "values" not in item:
            raise ImportSourceError(f"{where}: a per-video mapping must hold 'values' (and optionally 'times'). Got keys {sorted(item)}.")
        return _numpy(item["values"]), None if item.get("times") is None else _numpy(item["times"])
    return _numpy(item), None


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().float().numpy() if str(x.dtype) == "torch.bfloat16" else x.detach().cpu().numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number):
        raise ImportSourceError(f"values must be numeric arrays. Got dtype {arr.dtype}.")
    return arr


def _read(source: Path, fmt: str) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    if fmt == "npy":
        if not source.is_dir():
            raise ImportSourceError(f"{source}: .npy imports take a folder of per-video files.")
        for path in sorted(source.rglob("*.npy")):
            vid = path.relative_to(source).with_suffix("").as_posix()
            yield vid, _numpy(np.load(path, allow_pickle=False)), None
    elif fmt == "pt":
        yield from _read_pt(source)
    elif fmt == "hdf5":
        yield from _read_hdf5(source)
    else:
        yield from _read_pickle(source)


def _read_pt(source: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    import torch

    def load(path: Path) -> Any:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a file it refuses
            raise ImportSourceError(f"{path}: torch.load(weights_only=True) refused it ({type(exc).__name__}: {exc}). "
                               "Save plain tensors or dicts of tensors.") from None

    if source.is_dir():
        for path in sorted(source.rglob("*.pt")):
            values, times = _split(load(path), str(path))
            yield path.relative_to(source).with_suffix("").as_posix(), values, times
        return
    yield from _from_mapping(load(source), str(source))


def _from_mapping(data: Any, where: str) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ImportSourceError(f"{where}: expected a dict from video id (str) to array. Got {type(data).__name__}.")
    for vid in sorted(data):
        values, times = _split(data[vid], f"{where}: {vid!r}")
        yield vid, values, times


def _read_hdf5(source: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    try:
        import h5py
    except ImportError:
        raise ImportSourceError("HDF5 imports need h5py: pip install 'affectstore[hdf5]'.") from None
    found: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    with h5py.File(source, "r") as f:
        def visit(name: str, node: Any) -> None:
            if isinstance(node, h5py.Group) and isinstance(node.get("values"), h5py.Dataset):
                times = node.get("times")
                found.append((name, _numpy(node["values"][()]), None if times is None else _numpy(times[()])))
            elif isinstance(node, h5py.Dataset):
                parent, _, leaf = name.rpartition("/")
                if leaf in ("values", "times") and isinstance(f.get(parent or "/"), h5py.Group) and "values" in f[parent or "/"]:
                    return  # part of a group-per-video entry above
                found.append((name, _numpy(node[()]), None))

        f.visititems(visit)
    yield from sorted(found, key=lambda t: t[0])


_warned = False


def _read_pickle(source: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray | None]]:
    import pickle

    global _warned
    if not _warned:
        warnings.warn(f"unpickling {source}: this runs any code the file holds (--trust-pickle)", UserWarning, stacklevel=3)
        logger.warning("unpickling %s because --trust-pickle was given", source)
        _warned = True
    with open(source, "rb") as f:
        data = pickle.load(f)  # noqa: S301 - only with --trust-pickle, warned above
    yield from _from_mapping(data, str(source))


def parse_config(text: str | None) -> dict[str, Any] | None:
    """``--config`` as a dict: a JSON object (inline, or @FILE)."""
    if text is None:
        return None
    raw = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--config must be a JSON object (or @FILE holding one): {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"--config must be a JSON object. Got {type(doc).__name__}.")
    return doc
