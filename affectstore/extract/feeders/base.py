"""The feeder contract: one feeder per :class:`~affectstore.extract.base.Input` decodes a video's
input once and hands it to every extractor of that input.

A feeder's :meth:`Feeder.decode` returns a :class:`Decoded`: either a whole item (short
videos, pooled across videos into ``extract_batch``) or, for long videos, a sequence of
chunks fed to each extractor's ``open_stream`` as they are decoded, so memory stays bounded.
The scheduler (:mod:`affectstore.extract.runner.scheduler`) knows nothing else about a
modality.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from affectstore.extract.base import Extractor, Input, Outputs

if TYPE_CHECKING:
    from affectstore.datasets.base import DatasetAdapter, VideoEntry
    from affectstore.extract.runner.options import RunOptions


@dataclass
class FeedContext:
    """What a feeder may use: the dataset adapter (face crops, transcripts, labels), the store
    and dataset group (features this pass depends on), the run options, and the pass's extractors."""

    adapter: DatasetAdapter
    store: Any
    dataset: str
    options: RunOptions
    extractors: Sequence[Extractor[Any]]


class Decoded(abc.ABC):
    """One video's decoded input.

    ``amount`` is what the summary counts (audio seconds, faces, frames, segments) and
    ``units`` what pools are capped by (samples, faces). A short video has ``long = False`` and
    its whole input in :attr:`item`; a long one yields :meth:`chunks` once, in order, and
    :attr:`info` is what ``open_stream`` needs to know beforehand. :attr:`produced` holds the
    outputs of extractors the feeder ran itself while decoding (the face detector's boxes),
    complete once the item or every chunk has been consumed.
    """

    amount: float = 0.0
    units: int = 0
    long: bool = False
    item: Any = None
    info: Any = None

    def __init__(self) -> None:
        self.produced: dict[int, Outputs] = {}

    def chunks(self) -> Iterator[Any]:
        """The video's input in consecutive chunks (long videos only)."""
        raise NotImplementedError(f"{type(self).__name__} has no chunks: it is not long.")

    def close(self) -> None:
        """Release what the decoded input holds (temporary files, buffers)."""
        self.item = None


def file_size(path: Any) -> int:
    """Bytes of a file, 0 when it is missing or unreadable (a cheap proxy of a video's length)."""
    try:
        return os.stat(path).st_size if path is not None else 0
    except OSError:
        return 0


class Feeder(abc.ABC):
    """Decodes one kind of input per video for the extractors of one pass."""

    #: The input this feeder provides.
    input: ClassVar[Input]
    #: What ``Decoded.amount`` counts, for the summary and progress bar ("audio s", "faces").
    unit: ClassVar[str]

    def __init__(self, context: FeedContext) -> None:
        self.context = context

    @classmethod
    def hosts(cls, extractor: Extractor[Any]) -> bool:
        """Whether this feeder runs ``extractor`` itself while decoding (its outputs come in ``Decoded.produced``)."""
        return False

    @classmethod
    def group_key(cls, extractor: Extractor[Any]) -> Any:
        """Extractors of this input with different keys need separate passes (frames at different rates)."""
        return None

    @classmethod
    def implied_dependencies(cls, extractor: Extractor[Any], adapter: DatasetAdapter, options: RunOptions) -> dict[str, str]:
        """Feature sets an extractor of this input reads on this dataset beyond its own
        :meth:`~affectstore.extract.base.Extractor.dependencies` (role -> feature name)."""
        return {}

    def needs(self, extractor_index: int, entry: VideoEntry) -> bool:
        """Whether extractor ``extractor_index`` of the pass has anything to do for ``entry``."""
        return True

    def applies(self, entry: VideoEntry) -> bool:
        """Whether ``entry`` has this input at all (an audio-only clip has no faces); videos without
        it are left out of the pass and of the completeness check, and are not failures."""
        return True

    def order_key(self, entry: VideoEntry) -> int:
        """Sort key that groups videos of similar size into one pool (bytes of the input file)."""
        return file_size(entry.video or entry.audio)

    def close(self) -> None:
        """Release what the feeder holds (decoder processes); called once its pass is over."""

    @abc.abstractmethod
    def pool_units(self) -> int:
        """The most ``Decoded.units`` pooled into one ``extract_batch`` call."""

    @abc.abstractmethod
    def decode(self, entry: VideoEntry, wanted: Mapping[int, Sequence[str]]) -> Decoded:
        """Decode ``entry``'s input for the pass's extractors in ``wanted`` (index -> outputs still to write).

        Raise a MediaError, OSError, InputError or ExtractionError for a video that cannot be
        fed; the scheduler records it for every extractor of the pass and goes on.
        """


class ChunkedDecoded(Decoded):
    """A video's input from a generator of chunks (each with ``len()``): short when it yields one chunk.

    The first chunk is decoded at once (on the prefetch thread); a second one makes the video
    long, and the rest are decoded as the scheduler streams them, so at most two chunks are
    held at a time. ``finish`` is called once the generator is exhausted (to set ``produced``).
    """

    def __init__(self, chunks: Iterator[Any], join: Any, finish: Any = None) -> None:
        super().__init__()
        self._finish = finish
        self._rest: Iterator[Any] | None = None
        first = next(chunks, None)
        second = next(chunks, None) if first is not None else None
        if second is None:
            self._done()
            self.item = join([first]) if first is not None else None
            self.amount = self.units = len(first) if first is not None else 0
            self._held: list[Any] = []
        else:
            self.long = True
            self._held = [first, second]
            self._rest = chunks

    def _done(self) -> None:
        if self._finish is not None:
            self._finish(self)
            self._finish = None

    def chunks(self) -> Iterator[Any]:
        held, self._held = self._held, []
        for chunk in held:
            self.amount += len(chunk)
            yield chunk
        if self._rest is not None:
            for chunk in self._rest:
                self.amount += len(chunk)
                yield chunk
            self._rest = None
        self._done()

    def close(self) -> None:
        super().close()
        self._held = []
        if self._rest is not None and hasattr(self._rest, "close"):
            self._rest.close()
        self._rest = None
