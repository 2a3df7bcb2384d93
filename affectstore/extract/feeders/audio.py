"""The audio feeder: each video's audio decoded once to 16 kHz mono float32.

Short clips stay in memory and are pooled across videos (``extract_batch`` sorts clips and
windows by length and pads within a batch: bucketing by length). A clip longer than
``RunOptions.stream_above_s`` is spilled to an unlinked temporary file while its length and
statistics are taken (normalising extractors need the whole clip's mean and variance before
the first window), then read back block by block into each extractor's ``open_stream``:
memory does not grow with its length.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from affectstore.extract.audio import SAMPLE_RATE, WaveStats
from affectstore.extract.base import Input
from affectstore.extract.errors import ExtractionError
from affectstore.extract.feeders.base import Decoded, Feeder, file_size


class DecodedAudio(Decoded):
    """A decoded clip: in memory (``waveform``) or, when long, in an unlinked temporary file."""

    def __init__(self, stats: WaveStats, waveform: np.ndarray | None = None, spill: BinaryIO | None = None, block_s: float = 30.0):
        super().__init__()
        self.stats = stats
        self.waveform = waveform
        self._spill = spill
        self._block_samples = max(1, int(block_s * SAMPLE_RATE))
        self.amount = stats.seconds
        self.units = stats.n_samples
        self.long = spill is not None
        self.item = waveform
        self.info = stats

    def blocks(self, block_samples: int) -> Iterator[np.ndarray]:
        """The clip in consecutive float32 blocks."""
        if self._spill is None:
            assert self.waveform is not None
            for start in range(0, len(self.waveform), block_samples):
                yield self.waveform[start : start + block_samples]
            return
        self._spill.seek(0)
        while data := self._spill.read(block_samples * 4):
            yield np.frombuffer(data, dtype=np.float32)

    def chunks(self) -> Iterator[np.ndarray]:
        return self.blocks(self._block_samples)

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self.waveform = None
        self.item = None


def decode_audio(
    path: str | Path, spill_above: int, block_s: float = 30.0, spill_dir: str | None = None, decoder: Any = None
) -> DecodedAudio:
    """Decode a file's audio once (16 kHz mono float32, streamed); clips longer than ``spill_above``
    samples go to a temporary file as they decode, so memory stays at about one block.
    ``decoder``: an :class:`~affectstore.media.isolated.IsolatedDecoder` to decode in (None: in this process)."""
    from affectstore.media import stream_audio

    if decoder is not None:
        stream_audio = decoder.stream_audio
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
        return DecodedAudio(stats, spill=spill, block_s=block_s)
    waveform = pieces[0] if len(pieces) == 1 else np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    return DecodedAudio(stats, waveform=waveform, block_s=block_s)


class AudioFeeder(Feeder):
    """Audio of each video (the entry's ``audio`` file: an mp3 copy, the video itself, or a shared base video).

    With ``RunOptions.isolate`` (the default) the decoding runs in a child process per thread
    (:class:`~affectstore.media.isolated.IsolatedDecoder`): a file that crashes FFmpeg costs
    that one video (recorded with the signal), never the run.
    """

    input = Input.AUDIO
    unit = "audio s"

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._local = threading.local()
        self._decoders: list[Any] = []

    def _decoder(self) -> Any:
        if not self.context.options.isolate:
            return None
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            from affectstore.media.isolated import IsolatedDecoder

            decoder = self._local.decoder = IsolatedDecoder()
            self._decoders.append(decoder)
        return decoder

    def close(self) -> None:
        for decoder in self._decoders:
            decoder.close()
        self._decoders.clear()

    def order_key(self, entry: Any) -> int:
        return file_size(entry.audio)

    def pool_units(self) -> int:
        return int(self.context.options.pool_seconds * SAMPLE_RATE)

    def decode(self, entry: Any, wanted: Mapping[int, Sequence[str]]) -> DecodedAudio:
        if entry.audio is None:
            why = getattr(entry, "problem", None) or "missing from its layout"
            raise ExtractionError(f"no audio file for video {entry.id!r} in the dataset ({why}); add the file or leave the video out")
        opts = self.context.options
        return decode_audio(entry.audio, int(opts.stream_above_s * SAMPLE_RATE), opts.block_s, opts.spill_dir, self._decoder())
