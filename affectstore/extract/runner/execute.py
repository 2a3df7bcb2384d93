"""Running one pass's extractors on decoded videos: pools through ``extract_batch``, long videos
through ``open_stream``, and every output or failure handed to a :class:`Sink`.

The same code runs in the main process (the sink queues store writes on the writer thread)
and in worker processes (``--jobs``; the sink writes straight into the store), so a video
gives the same arrays either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from affectstore.extract.base import Extractor, OutputKind, Outputs, Text, concatenate_outputs
from affectstore.extract.errors import ExtractionError, InputError
from affectstore.extract.feeders.base import Decoded
from affectstore.extract.runner.plan import Pass

logger = logging.getLogger(__name__)


def reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def decode_stage(error: BaseException) -> str:
    """The failure stage of an error raised while decoding a video's input."""
    return getattr(error, "stage", None) or ("input" if isinstance(error, InputError) else "decode")


def expected_decode_error(error: BaseException) -> bool:
    from affectstore.media import MediaError

    return isinstance(error, MediaError | OSError | InputError | ExtractionError)


class Sink(Protocol):
    """Where a pass's results go."""

    def write(self, video_id: str, index: int, name: str, output: Any) -> None:
        """Store one output of extractor ``index`` for a video."""

    def fail(self, video_id: str, name: str, stage: str, why: str) -> None:
        """Record that feature set ``name`` failed for a video."""


class PassExecutor:
    """The extractors of one pass applied to decoded videos (see the module docstring)."""

    def __init__(
        self,
        group: Pass,
        extractors: Sequence[Extractor[Any]],
        needs: Mapping[str, Mapping[int, Sequence[str]]],
        kinds: Mapping[str, OutputKind],
        sink: Sink,
    ) -> None:
        self.group = group
        self.extractors = extractors
        self.needs = needs
        self.kinds = kinds
        self.sink = sink

    def run_pool(self, pool: Sequence[tuple[Any, Decoded]]) -> None:
        """Short videos: every extractor sees all the videos that need it in one ``extract_batch``."""
        for entry, decoded in pool:
            self.emit_produced(entry.id, decoded)
        for i in self.group.members:
            if i in self.group.hosted:
                continue
            extractor = self.extractors[i]
            valid: list[tuple[Any, Any]] = []
            for entry, decoded in pool:
                if i not in self.needs[entry.id]:
                    continue
                try:
                    valid.append((entry, extractor.validate(decoded.item)))
                except InputError as error:
                    self.fail_extractor(entry.id, i, "input", reason(error))
            if not valid:
                continue
            try:
                results = extractor.extract_batch([item for _, item in valid])
            except Exception as error:  # noqa: BLE001 - isolate the video that fails, below
                if len(valid) == 1:
                    logger.warning("%s failed on %s", extractor.prefix, valid[0][0].id, exc_info=True)
                    self.fail_extractor(valid[0][0].id, i, "model", reason(error))
                    continue
                logger.info("%s: batch of %d failed (%s); retrying video by video", extractor.prefix, len(valid), error)
                results, kept = [], []
                for entry, item in valid:
                    try:
                        results.append(extractor.extract(item))
                        kept.append((entry, item))
                    except Exception as one_error:  # noqa: BLE001 - recorded for this video
                        logger.warning("%s failed on %s", extractor.prefix, entry.id, exc_info=True)
                        self.fail_extractor(entry.id, i, "model", reason(one_error))
                valid = kept
            for (entry, _), result in zip(valid, results, strict=True):
                self.emit(entry.id, i, result)

    def stream_one(self, entry: Any, decoded: Decoded) -> bool:
        """A long video: every extractor it needs reads the same chunks through ``open_stream``.
        Returns False when the input broke part-way (the video then failed for the whole pass)."""
        streams = {}
        parts: dict[int, dict[str, list[Any]]] = {}
        for i in self.group.members:
            if i in self.group.hosted or i not in self.needs[entry.id]:
                continue
            extractor = self.extractors[i]
            try:
                streams[i] = extractor.open_stream(decoded.info)
                parts[i] = {}
            except InputError as error:
                self.fail_extractor(entry.id, i, "input", reason(error))
                continue
            if not extractor.bounded_stream:
                logger.info("%s holds all of %s in memory", extractor.prefix, entry.id)

        def collect(i: int, outputs: Outputs) -> None:
            for name, feats in outputs.items():
                parts[i].setdefault(name, []).append(feats)

        def fail(i: int, error: BaseException) -> None:
            logger.warning("%s failed on %s", self.extractors[i].prefix, entry.id, exc_info=True)
            self.fail_extractor(entry.id, i, "input" if isinstance(error, InputError) else "model", reason(error))

        try:
            for chunk in decoded.chunks():
                for i, stream in list(streams.items()):
                    try:
                        collect(i, stream.push(chunk))
                    except Exception as error:  # noqa: BLE001 - recorded for this video and extractor
                        fail(i, error)
                        del streams[i]
        except Exception as error:  # noqa: BLE001 - the input broke part-way: nothing of this video is kept
            if not expected_decode_error(error):
                logger.warning("unexpected error decoding %s", entry.id, exc_info=True)
            self.fail_pass(entry.id, decode_stage(error), reason(error))
            return False
        self.emit_produced(entry.id, decoded)
        for i, stream in streams.items():
            try:
                collect(i, stream.close())
            except Exception as error:  # noqa: BLE001
                fail(i, error)
                continue
            self.emit(entry.id, i, {name: concatenate_outputs(chunks) for name, chunks in parts.pop(i).items()})
        return True

    def emit_produced(self, video_id: str, decoded: Decoded) -> None:
        """Outputs of the extractors a feeder ran itself (the face detector's boxes)."""
        for i, outputs in decoded.produced.items():
            if i in self.needs[video_id]:
                self.emit(video_id, i, outputs)

    def emit(self, video_id: str, i: int, result: Mapping[str, Any]) -> None:
        for name in self.needs[video_id][i]:
            out = result.get(name)
            if out is None:
                self.sink.fail(video_id, name, "model", f"extractor {self.extractors[i].prefix!r} returned no output {name!r}")
            elif (self.kinds[name] is OutputKind.TEXT) != isinstance(out, Text):
                expected = "text" if self.kinds[name] is OutputKind.TEXT else "numbers"
                self.sink.fail(video_id, name, "model", f"output {name!r} holds {expected} but the extractor returned {type(out).__name__}")
            else:
                self.sink.write(video_id, i, name, out)

    def fail_pass(self, video_id: str, stage: str, why: str) -> None:
        for i in self.group.members:
            self.fail_extractor(video_id, i, stage, why)

    def fail_extractor(self, video_id: str, i: int, stage: str, why: str) -> None:
        for name in self.needs[video_id].get(i, []):
            self.sink.fail(video_id, name, stage, why)


def write_output(store: Any, dataset: str, name: str, video_id: str, output: Any, config_hash: str,
                 media: dict[str, Any] | None = None) -> None:
    """One output into the store with the writer its kind needs; ``media`` (input sizes, hashes) goes into its mark."""
    if isinstance(output, Text):
        store.write_text(dataset, name, video_id, output.start, output.end, output.text, config_hash=config_hash, media=media)
    else:
        store.write_video(dataset, name, video_id, output.values, output.times, config_hash=config_hash, media=media)
