"""The faces feeder: face crops of each video, with their times, in bounded chunks.

Where crops come from (``RunOptions.faces``):

- ``auto`` (default): the dataset's own crops where it ships them for the video (EMI
  ``face_images/``, BAH ``cropped-aligned-faces/``, Aff-Wild2 ``cropped_aligned/``), each
  with its time from the adapter; otherwise faces detected in the video;
- ``dataset``: the dataset's crops only (a video without crops fails);
- ``detect``: always detect, ignoring shipped crops.

Detection samples frames at ``face-boxes.rate`` fps, keeps the largest face per frame and
crops it square with a margin. The ``face-boxes`` extractor runs inside this feeder, so a
video is decoded once for detection and crops, and its boxes are written as their own
feature set. When the boxes of a video are in the store already, the frames at their times
are cropped without detecting again. Frames without a face are absent; a video without any
face fails with that reason. Crops and frames are handed on in chunks of
``RunOptions.face_chunk``, so memory does not grow with the video's length.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from affectstore.extract.base import Extractor, Features, Input
from affectstore.extract.errors import InputError
from affectstore.extract.face_boxes import FaceBoxesConfig, FaceBoxesExtractor, no_face_message
from affectstore.extract.feeders.base import ChunkedDecoded, Decoded, Feeder
from affectstore.extract.feeders.frames import audio_only, frame_chunks, require_video
from affectstore.extract.images import ImageBatch

#: The feature set face models read their boxes from.
BOXES = "face-boxes"


class FacesFeeder(Feeder):
    """Face crops of each video: the dataset's, or detected (see the module docstring)."""

    input = Input.FACES
    unit = "faces"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._crops: dict[str, Any] = {}

    @classmethod
    def hosts(cls, extractor: Extractor[Any]) -> bool:
        return isinstance(extractor, FaceBoxesExtractor)

    @classmethod
    def implied_dependencies(cls, extractor: Extractor[Any], adapter: Any, options: Any) -> dict[str, str]:
        if isinstance(extractor, FaceBoxesExtractor) or options.faces == "dataset":
            return {}
        return {"boxes": BOXES}

    def pool_units(self) -> int:
        return self.context.options.pool_faces

    def _dataset_crops(self, entry: Any) -> Any:
        if self.context.options.faces == "detect" or not getattr(self.context.adapter, "has_faces", False):
            return None
        if entry.id not in self._crops:
            crops = self.context.adapter.face_crops(entry.id)
            self._crops[entry.id] = crops if len(crops) else None
        return self._crops[entry.id]

    def _detector_index(self) -> int | None:
        return next((i for i, e in enumerate(self.context.extractors) if isinstance(e, FaceBoxesExtractor) and e.prefix == BOXES), None)

    def applies(self, entry: Any) -> bool:
        return not audio_only(entry) or self._dataset_crops(entry) is not None

    def needs(self, extractor_index: int, entry: Any) -> bool:
        if isinstance(self.context.extractors[extractor_index], FaceBoxesExtractor):
            return self._dataset_crops(entry) is None
        return True

    def decode(self, entry: Any, wanted: Mapping[int, Sequence[str]]) -> Decoded:
        chunk = self.context.options.face_chunk
        crops = self._dataset_crops(entry)
        if crops is not None:
            return ChunkedDecoded(_crop_file_chunks(crops, chunk), ImageBatch.concatenate)
        if self.context.options.faces == "dataset":
            raise InputError(
                f"the dataset has no face crops for video {entry.id!r} (faces = 'dataset'); "
                "set faces = 'auto' in the recipe's [run] table to detect faces in the video"
            )
        video = require_video(entry)
        index = self._detector_index()
        if index is not None and index in wanted:
            detector = self.context.extractors[index]
            assert isinstance(detector, FaceBoxesExtractor)
            found: list[Features] = []
            sampled: list[np.ndarray] = []

            def finish(decoded: Decoded) -> None:
                n = sum(len(t) for t in sampled)
                decoded.produced[index] = detector.outputs(found, n, float(sampled[0][0]), float(sampled[-1][-1]))

            return ChunkedDecoded(_detected_chunks(detector, video, chunk, found, sampled), ImageBatch.concatenate, finish)
        config, boxes = self._stored_boxes(entry)
        return ChunkedDecoded(_stored_box_chunks(config, boxes, video, chunk), ImageBatch.concatenate)

    def _stored_boxes(self, entry: Any) -> tuple[FaceBoxesConfig, Any]:
        from affectstore.store import StoreError

        store, dataset = self.context.store, self.context.dataset
        try:
            prov = store.provenance(dataset, BOXES)
            boxes = store.read_video(dataset, BOXES, entry.id)
        except StoreError as error:
            raise InputError(f"no {BOXES} for this video in the store ({error}); extract {BOXES} for it first") from None
        stored = {k: v for k, v in (prov.get("config") or {}).items() if k in FaceBoxesConfig.field_names()}
        return FaceBoxesConfig.from_dict(stored), boxes


def _crop_file_chunks(crops: Any, chunk: int) -> Iterator[ImageBatch]:
    from affectstore.media.faces import load_face_crop

    for start in range(0, len(crops), chunk):
        paths = crops.paths[start : start + chunk]
        yield ImageBatch(np.asarray(crops.times[start : start + chunk], dtype=np.float64), [load_face_crop(p) for p in paths])


def _detected_chunks(
    detector: FaceBoxesExtractor, video: Any, chunk: int, found: list[Features], sampled: list[np.ndarray]
) -> Iterator[ImageBatch]:
    """Crops of the frames with a face; ``found`` collects the boxes and ``sampled`` the frame chunks' times."""
    for batch in frame_chunks(video, detector.frame_rate, chunk):
        sampled.append(batch.times)
        boxes = detector.boxes(batch)
        found.append(boxes)
        if len(boxes):
            by_time = dict(zip(batch.times.tolist(), batch.images, strict=True))
            images = [detector.crop(by_time[t], box) for t, box in zip(boxes.times.tolist(), boxes.values, strict=True)]
            yield ImageBatch(boxes.times, images)
    if not any(len(b) for b in found):
        raise InputError(no_face_message(sum(len(t) for t in sampled), detector.config))


def _stored_box_chunks(config: FaceBoxesConfig, boxes: Any, video: Any, chunk: int) -> Iterator[ImageBatch]:
    from affectstore.media.detect import crop_face

    times = np.asarray(boxes.times, dtype=np.float64)
    for batch in frame_chunks(video, config.rate, chunk):
        picked_times, images = [], []
        for t, image in zip(batch.times.tolist(), batch.images, strict=True):
            k = int(np.searchsorted(times, t - 1e-6))
            if k < len(times) and abs(times[k] - t) <= 1e-6:
                picked_times.append(times[k])
                images.append(crop_face(image, boxes.values[k], config.margin, config.crop_size))
        if images:
            yield ImageBatch(np.asarray(picked_times, dtype=np.float64), images)
