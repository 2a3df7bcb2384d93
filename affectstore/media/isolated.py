"""Decoding in a worker process, so that no file can crash the caller.

A native crash inside FFmpeg or PyAV (a segfault, an abort) kills the process it happens
in; a hang blocks it forever. `IsolatedDecoder` runs the decoding of
`affectstore.media.audio` in a child interpreter and turns either into a `MediaError`
for that one file (`DecoderCrashError`, naming the signal); the next request starts a
fresh worker. Results are the same arrays the in-process functions return.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from affectstore.media import _decode_worker as wire
from affectstore.media import errors as media_errors
from affectstore.media.audio import SAMPLE_RATE
from affectstore.media.errors import DecoderCrashError, MediaError
from affectstore.media.probe import MediaInfo, MissingMediaError

logger = logging.getLogger(__name__)

_STARTUP_S = 60.0
_KILLED_HINT = (
    "SIGKILL comes from outside the decoder, most often the out-of-memory killer: check the machine's memory "
    "and run again; the other files are not affected."
)
_ERRORS: dict[str, type[MediaError]] = {
    name: cls for name, cls in vars(media_errors).items() if isinstance(cls, type) and issubclass(cls, MediaError)
}
_ERRORS[MissingMediaError.__name__] = MissingMediaError


class DecoderStartError(RuntimeError):
    """The worker process could not be started at all (an installation problem, not a file's)."""


class IsolatedDecoder:
    """Decode audio and probe media in a restartable worker process.

    API (the same arguments and results as `affectstore.media.stream_audio`,
    `load_audio` and `probe`)::

        with IsolatedDecoder() as decoder:
            for entry in entries:
                try:
                    for start, block in decoder.stream_audio(entry.audio, window=30.0):
                        ...                      # float32 mono blocks at 16 kHz
                except MediaError as error:      # DecoderCrashError if the worker died
                    record_failure(entry.id, "decode", str(error))

    - ``stream_audio(path, window=30.0, overlap=0.0, sample_rate=16000)``: iterator of
      ``(start_seconds, block)``; at most ``prefetch`` blocks are decoded ahead.
      Stopping early (``break``, an exception in the loop) stops the worker's decode.
    - ``load_audio(path, sample_rate=16000)``: the whole track as one array.
    - ``count_samples(path, sample_rate=16000)``: decode the whole track in the worker
      and return its length in samples (no audio crosses the pipe): the check that
      ``affect data check --probe`` runs.
    - ``probe(path)``: `MediaInfo` from the file's header.

    Every method raises the `MediaError` subclass the in-process function would raise.
    When the worker dies (a native crash) it raises `DecoderCrashError` with
    ``error.signal`` set (e.g. "SIGSEGV"); when the worker makes no progress for
    ``timeout`` seconds it is killed and `DecoderCrashError` says so (``signal`` None).
    The next call starts a new worker (``restarts`` counts them). One decoder serves one
    thread at a time; use one per feeder thread. ``close()`` (or the ``with`` block)
    stops the worker; an idle worker costs one sleeping process.

    ``command`` replaces the worker's command line (tests use it to run a worker that
    crashes on purpose); the two pipe descriptors are appended to it.
    """

    def __init__(self, timeout: float | None = 300.0, prefetch: int = 2, command: list[str] | None = None) -> None:
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds or None. Got {timeout!r} instead.")
        if not isinstance(prefetch, int) or prefetch < 1:
            raise ValueError(f"prefetch must be an int >= 1. Got {prefetch!r} instead.")
        self.timeout = timeout
        self.prefetch = prefetch
        self.restarts = 0
        self._command = list(command) if command else [sys.executable, "-m", wire.__name__]
        self._proc: subprocess.Popen | None = None
        self._inbox: Connection | None = None  # replies from the worker
        self._outbox: Connection | None = None  # requests to the worker
        self._active: Iterator | None = None
        self._started = 0

    # ------------------------------------------------------------------ public
    def stream_audio(
        self, path: str | Path, window: float = 30.0, overlap: float = 0.0, sample_rate: int = SAMPLE_RATE
    ) -> Iterator[tuple[float, np.ndarray]]:
        """Yield ``(start_time, chunk)`` windows of mono float32 audio, decoded in the worker."""
        request = {"op": "audio", "path": str(path), "window": window, "overlap": overlap,
                   "sample_rate": sample_rate, "prefetch": self.prefetch}
        return self._blocks(request)

    def load_audio(self, path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """The whole audio track of ``path``, mono float32 at ``sample_rate``, decoded in the worker."""
        pieces = [block for _, block in self.stream_audio(path, window=30.0, sample_rate=sample_rate)]
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def count_samples(self, path: str | Path, sample_rate: int = SAMPLE_RATE) -> int:
        """Decode the whole audio track in the worker; returns its number of samples at ``sample_rate``."""
        request = {"op": "count", "path": str(path), "window": 30.0, "overlap": 0.0, "sample_rate": sample_rate}
        return int(self._call(request)["samples"])

    def probe(self, path: str | Path) -> MediaInfo:
        """Read a file's header in the worker (see `affectstore.media.probe`)."""
        info = self._call({"op": "probe", "path": str(path)})
        info["path"] = Path(path)
        return MediaInfo(**info)

    def close(self) -> None:
        """Stop the worker (it finishes nothing: call between files)."""
        self._finish_active()
        self._shutdown()

    def _shutdown(self) -> None:
        proc, self._proc = self._proc, None
        for conn in (self._outbox, self._inbox):
            if conn is not None:
                conn.close()
        self._inbox = self._outbox = None
        if proc is not None and proc.poll() is None:
            try:
                proc.wait(timeout=5)  # it exits on the closed pipe
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "IsolatedDecoder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ----------------------------------------------------------------- worker
    def _start(self) -> None:
        req_read, req_write = os.pipe()
        rep_read, rep_write = os.pipe()
        env = dict(os.environ)
        # The worker must import this very package, wherever it was imported from.
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [*self._command, str(req_read), str(rep_write)],
                pass_fds=(req_read, rep_write), stdin=subprocess.DEVNULL, env=env, close_fds=True,
            )
        finally:
            os.close(req_read)
            os.close(rep_write)
        self._proc = proc
        self._outbox = Connection(req_write, readable=False)
        self._inbox = Connection(rep_read, writable=False)
        try:
            ready = self._inbox.poll(_STARTUP_S) and self._inbox.recv_bytes() == wire.READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
            self._shutdown()
            raise DecoderStartError(
                f"the decoder worker ({' '.join(self._command)}) did not start (exit code {code}); "
                "its error is printed above. Check that affectstore and PyAV import in this Python."
            )
        if self._started:
            self.restarts += 1
        self._started += 1

    def _ensure(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._shutdown()
            self._start()

    def _finish_active(self) -> None:
        active, self._active = self._active, None
        if active is not None:
            active.close()  # stops that stream in the worker before the next request

    def _send(self, message: bytes, path: str) -> None:
        try:
            self._outbox.send_bytes(message)
        except (BrokenPipeError, OSError):
            raise self._crashed(path) from None

    def _receive(self, path: str) -> tuple[bytes, bytes]:
        try:
            ready = self._inbox.poll(self.timeout)
        except (EOFError, OSError):
            ready = True
        if not ready:
            self._kill()
            raise DecoderCrashError(
                path, f"the decoder made no progress for {self.timeout:g} s (a hang in FFmpeg) and was stopped",
                signal=None,
            )
        try:
            data = self._inbox.recv_bytes()
        except (EOFError, OSError):
            raise self._crashed(path) from None
        return data[:1], memoryview(data)[1:]  # a view: audio blocks are not copied again

    def _crashed(self, path: str) -> DecoderCrashError:
        proc = self._proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._kill()
                code = proc.returncode
        self._shutdown()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            logger.warning("decoder worker killed by %s on %s; starting a new one", name, path)
            hint = _KILLED_HINT if name == "SIGKILL" else None
            return DecoderCrashError(
                path, f"the decoder process was killed by {name} ({signal.strsignal(-code)}) while decoding this file",
                hint, signal=name,
            )
        logger.warning("decoder worker exited (code %s) on %s; starting a new one", code, path)
        return DecoderCrashError(path, f"the decoder process exited with code {code} while decoding this file")

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._shutdown()

    def _error(self, payload) -> Exception:
        doc = json.loads(bytes(payload))
        if doc["type"] == "ValueError":
            return ValueError(doc["cause"])
        cls = _ERRORS.get(doc["type"], MediaError)
        return cls(doc["path"], doc["cause"], doc.get("hint"))

    # ------------------------------------------------------------ requests
    def _call(self, request: dict) -> dict:
        self._finish_active()
        self._ensure()
        path = request["path"]
        self._send(json.dumps(request).encode("utf-8"), path)
        while True:
            tag, payload = self._receive(path)
            if tag == wire.DONE:
                return json.loads(bytes(payload))
            if tag == wire.ERROR:
                raise self._error(payload)

    def _blocks(self, request: dict) -> Iterator[tuple[float, np.ndarray]]:
        gen = self._stream(request)
        return _Tracked(self, gen)

    def _stream(self, request: dict) -> Iterator[tuple[float, np.ndarray]]:
        self._ensure()
        path = request["path"]
        self._send(json.dumps(request).encode("utf-8"), path)
        ended = False
        try:
            while True:
                tag, payload = self._receive(path)
                if tag == wire.BLOCK:
                    (start,) = wire.START.unpack_from(payload)
                    block = np.frombuffer(payload, dtype="<f4", offset=wire.START.size).astype(np.float32)
                    yield start, block
                    self._send(wire.ACK_NEXT, path)
                elif tag == wire.DONE:
                    ended = True
                    return
                elif tag == wire.ERROR:
                    ended = True
                    raise self._error(payload)
        except DecoderCrashError:
            ended = True
            raise
        finally:
            if not ended:
                self._stop(path)

    def _stop(self, path: str) -> None:
        """The consumer left the stream early: stop the worker's decode and drain what it sent."""
        if self._proc is None:
            return
        try:
            self._outbox.send_bytes(wire.ACK_STOP)
            while True:
                tag, _ = self._receive(path)
                if tag in (wire.STOPPED, wire.DONE, wire.ERROR):
                    return
        except (MediaError, OSError):
            self._kill()  # a worker that cannot even stop is not worth keeping


class _Tracked:
    """The iterator `stream_audio` returns: remembers itself as the decoder's active stream."""

    def __init__(self, decoder: IsolatedDecoder, gen: Iterator) -> None:
        self._decoder = decoder
        self._gen = gen
        self._begun = False

    def __iter__(self) -> "_Tracked":
        return self

    def __next__(self) -> tuple[float, np.ndarray]:
        if not self._begun:
            self._begun = True
            self._decoder._finish_active()
            self._decoder._active = self
        try:
            return next(self._gen)
        except BaseException:
            if self._decoder._active is self:
                self._decoder._active = None
            raise

    def close(self) -> None:
        if self._decoder._active is self:
            self._decoder._active = None
        self._gen.close()
