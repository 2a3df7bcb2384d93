"""The extraction runner: a dataset's manifest x the requested extractors -> feature sets in a store.

    from affectstore.extract.runner import run_extraction
    summary = run_extraction("clips", "data/ravdess-dev", ["egemaps"], "runs/ravdess.zarr")
    print(summary.text())

What it does, in order:

1. **Plan** (:mod:`.plan`). Every output of every extractor is one feature set (``vad`` and
   ``vad-frames``, ``fer``; ``mobilevit`` and ``mobilevit-logits``). Feature sets an
   extractor reads (face boxes, a transcript) are added to the run when the store lacks
   them; the extractors are ordered so producers come first, and grouped into passes, one
   per input kind (audio, faces, frames, transcript). A feature set already in the store
   with another config hash stops the run before any work, with the settings that differ.
   Videos whose every output is complete are skipped; ``--shard I/N`` picks every N-th video
   of the sorted selection, ``--limit`` caps what is left.
2. **Load** each extractor once. A model that cannot be loaded stops the run with one
   message naming it and how to provide it; nothing is recorded per video.
3. **Feed** (:mod:`affectstore.extract.feeders`). Per pass, the input's feeder decodes each
   video once; short videos are pooled across videos into ``extract_batch``, long ones are
   streamed in bounded chunks through ``open_stream``.
4. **Write** each video's arrays, then its completion mark, on a writer thread. A failure
   (bad media, no face, an input the extractor refuses, a model error) is recorded per
   feature set with its stage and reason; the run goes on. Failed videos are retried on the
   next run.
5. **Pack** every feature set whose videos (of the whole selection, all shards) are now
   complete, for fast bulk reads; then return a :class:`RunSummary`.
"""

from affectstore.extract.errors import ExtractionError
from affectstore.extract.feeders.audio import DecodedAudio, decode_audio
from affectstore.extract.runner.command import extract_command, run_extraction
from affectstore.extract.runner.options import (
    RunOptions,
    build_extractor,
    build_extractors,
    load_extractor,
    parse_settings,
    parse_shard,
)
from affectstore.extract.runner.scheduler import Runner
from affectstore.extract.runner.summary import FailureRecord, RunSummary

__all__ = [
    "DecodedAudio",
    "ExtractionError",
    "FailureRecord",
    "RunOptions",
    "RunSummary",
    "Runner",
    "build_extractor",
    "build_extractors",
    "decode_audio",
    "extract_command",
    "load_extractor",
    "parse_settings",
    "parse_shard",
    "run_extraction",
]
