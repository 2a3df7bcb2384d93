"""Sequence view of a batch (ragged per-video arrays read from the store), streams and windows,
the shared training loop of the sequence models, and building a sequence batch for a task."""

from affectstore.train.sequence.batch import build_sequence_batch
from affectstore.train.sequence.streams import StreamSpec, collate, parse_streams
from affectstore.train.sequence.view import SequenceView, VideoSource

__all__ = ["SequenceView", "StreamSpec", "VideoSource", "build_sequence_batch", "collate", "parse_streams"]
