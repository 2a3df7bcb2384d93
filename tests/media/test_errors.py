"""Each kind of bad media raises its own typed error naming the file and the cause."""

import os
import pickle

import pytest

from affectstore.media import (
    CorruptMediaError,
    EmptyMediaError,
    MediaError,
    MediaPermissionError,
    MissingMediaError,
    NoAudioStreamError,
    NotAFileError,
    NoVideoStreamError,
    UnsupportedMediaError,
    audio_duration,
    load_audio,
    probe,
    sample_frames,
    stream_audio,
)
from affectstore.testing.datasets import (
    make_empty_file,
    make_media,
    make_not_media,
    make_truncated_file,
)

DECODERS = [load_audio, lambda p: next(stream_audio(p)), audio_duration]


@pytest.mark.parametrize("decode", DECODERS, ids=["load_audio", "stream_audio", "audio_duration"])
def test_empty_file(tmp_path, decode):
    path = make_empty_file(tmp_path / "empty.mp4")
    with pytest.raises(EmptyMediaError, match=r"empty.mp4: file is empty \(0 bytes\)\. The file is empty") as info:
        decode(path)
    assert info.value.path == path and isinstance(info.value, MediaError)


def test_truncated_mp4(tmp_path):
    path = make_truncated_file(tmp_path / "cut.mp4", keep=0.5, duration=1.0)
    with pytest.raises(CorruptMediaError, match=r"cut.mp4: cannot open the container \(.+\)\. The file looks corrupt or truncated"):
        load_audio(path)
    with pytest.raises(CorruptMediaError):
        sample_frames(path)


def test_not_media_with_media_extension(tmp_path):
    path = make_not_media(tmp_path / "notes.mp3")
    with pytest.raises(CorruptMediaError, match="notes.mp3: cannot open the container"):
        load_audio(path)


def test_wrong_extension(tmp_path):
    path = make_not_media(tmp_path / "notes.txt")
    with pytest.raises(UnsupportedMediaError, match=r"notes.txt: extension '.txt' is not a supported media type\. Supported extensions: .*\.mp4"):
        load_audio(path)


def test_no_audio_stream(tmp_path):
    path = make_media(tmp_path / "silent.mp4", duration=0.5, audio=False)
    with pytest.raises(NoAudioStreamError, match="silent.mp4: the file has no audio stream. This file has no audio track"):
        load_audio(path)
    with pytest.raises(NoAudioStreamError):
        next(stream_audio(path))
    assert len(sample_frames(path)) == 12  # the video itself is fine


def test_no_video_stream(tmp_path):
    path = make_media(tmp_path / "voice.mp3", duration=0.5)
    with pytest.raises(NoVideoStreamError, match="voice.mp3: the file has no video stream"):
        sample_frames(path)
    assert probe(path).has_video is False


def test_missing_file(tmp_path):
    with pytest.raises(MissingMediaError, match="nope.wav: file not found") as info:
        load_audio(tmp_path / "nope.wav")
    assert isinstance(info.value, FileNotFoundError)


def test_errors_survive_pickling_for_process_pools(tmp_path):
    error = NoAudioStreamError(tmp_path / "x.mp4", "the file has no audio stream")
    # Only our own exception, to check worker processes can send it back; never a store.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NoAudioStreamError and str(copy) == str(error)


def test_a_directory_with_a_media_name(tmp_path):
    (tmp_path / "x.wav").mkdir()
    with pytest.raises(NotAFileError, match=r"x.wav: is a directory, not a media file\. Point the dataset at the media file itself"):
        load_audio(tmp_path / "x.wav")


def test_symlink_loop_and_broken_symlink(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(NotAFileError, match="a.wav: symlink loop: the link never resolves to a file"):
        probe(tmp_path / "a.wav")
    (tmp_path / "gone.mp3").symlink_to(tmp_path / "elsewhere.mp3")
    with pytest.raises(MissingMediaError, match=r"gone.mp3: broken symlink: it points to '.*elsewhere.mp3', which does not exist"):
        load_audio(tmp_path / "gone.mp3")


def test_a_pipe_is_not_a_file(tmp_path):
    os.mkfifo(tmp_path / "live.wav")
    with pytest.raises(NotAFileError, match=r"live.wav: is not a regular file \(a device, socket or pipe\)"):
        load_audio(tmp_path / "live.wav")


def test_permission_denied_is_not_called_corrupt(tmp_path, monkeypatch):
    path = make_media(tmp_path / "locked.wav", duration=0.2)
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads every file: make the open fail the way it fails for a user
        import builtins

        real_open = builtins.open

        def denying_open(file, *args, **kwargs):
            if str(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", denying_open)
    with pytest.raises(MediaPermissionError, match=r"locked.wav: permission denied: this user may not read the file\. Make it readable") as info:
        load_audio(path)
    assert isinstance(info.value, PermissionError)
    path.chmod(0o644)
