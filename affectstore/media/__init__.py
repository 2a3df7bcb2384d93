"""Media decoding: audio at 16 kHz mono float32 (whole or streamed in windows), video
frames at a chosen rate with exact stream timestamps, face crops as uint8 RGB arrays,
and typed errors for files that cannot be read.

    from affectstore.media import stream_audio, load_audio, sample_frames, MediaError
    for start, chunk in stream_audio("talk.mp4", window=30.0):
        ...
"""

from affectstore.media.audio import (
    SAMPLE_RATE,
    audio_duration,
    load_audio,
    stream_audio,
)
from affectstore.media.errors import (
    CorruptMediaError,
    DecoderCrashError,
    EmptyMediaError,
    MediaError,
    MediaPermissionError,
    NoAudioStreamError,
    NotAFileError,
    NoVideoStreamError,
    UnsupportedMediaError,
)
from affectstore.media.faces import IMAGE_EXTENSIONS, load_face_crops
from affectstore.media.probe import (
    AUDIO_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaInfo,
    MissingMediaError,
    probe,
)
from affectstore.media.video import (
    VideoFrames,
    frame_times,
    iter_frames,
    sample_frames,
    video_duration,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "SAMPLE_RATE",
    "SUPPORTED_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "CorruptMediaError",
    "DecoderCrashError",
    "EmptyMediaError",
    "MediaError",
    "MediaInfo",
    "MediaPermissionError",
    "MissingMediaError",
    "NoAudioStreamError",
    "NotAFileError",
    "NoVideoStreamError",
    "UnsupportedMediaError",
    "VideoFrames",
    "audio_duration",
    "frame_times",
    "iter_frames",
    "load_audio",
    "load_face_crops",
    "probe",
    "sample_frames",
    "stream_audio",
    "video_duration",
]
