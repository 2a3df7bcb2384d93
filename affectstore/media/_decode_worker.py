"""The child side of `affectstore.media.isolated`: decode requests, one at a time.

Run as ``python -m affectstore.media._decode_worker READ_FD WRITE_FD``. Messages are
`multiprocessing.connection` frames over two pipes, with no pickle: a request is a JSON
object; each reply is one tag byte and a payload:

- ``B``: an audio block, 8 bytes little-endian float64 start time + float32 samples;
- ``D``: the request is done, JSON result;
- ``E``: the request failed, JSON ``{"type", "path", "cause", "hint"}``;
- ``X``: the stream was stopped on the parent's request.

Blocks are sent under credit: at most ``prefetch`` unacknowledged blocks are in the pipe,
so memory stays bounded and the parent can stop a stream at any point (``s``); each
``n`` from the parent grants one more block. Stray acknowledgements that arrive after a
stream ended are ignored.
"""

from __future__ import annotations

import json
import signal
import struct
import sys
from dataclasses import asdict
from multiprocessing.connection import Connection

import numpy as np

READY, BLOCK, DONE, ERROR, STOPPED = b"R", b"B", b"D", b"E", b"X"
ACK_NEXT, ACK_STOP = b"n", b"s"
START = struct.Struct("<d")


class _Stopped(Exception):
    """The parent asked to stop the current stream."""


def _error_reply(exc: BaseException, path: str) -> bytes:
    from affectstore.media.errors import MediaError

    if isinstance(exc, MediaError):
        doc = {"type": type(exc).__name__, "path": str(exc.path), "cause": exc.cause, "hint": exc.hint}
    elif isinstance(exc, ValueError):
        doc = {"type": "ValueError", "path": path, "cause": str(exc), "hint": None}
    else:  # a bug or an unexpected library error: still this file's failure, with its name
        doc = {"type": "MediaError", "path": path, "cause": f"unexpected decoder error ({type(exc).__name__}: {exc})", "hint": None}
    return ERROR + json.dumps(doc).encode("utf-8")


def _stream(request: dict, inbox: Connection, outbox: Connection) -> bytes:
    from affectstore.media.audio import stream_audio

    credit = int(request.get("prefetch", 2))
    send = request["op"] == "audio"
    n = 0
    for start, block in stream_audio(request["path"], request["window"], request["overlap"], request["sample_rate"]):
        n += block.size
        if not send:
            continue
        while credit == 0:
            ack = inbox.recv_bytes()
            if ack == ACK_STOP:
                raise _Stopped
            credit += ack == ACK_NEXT
        message = bytearray(1 + START.size + 4 * block.size)  # one copy of the samples, not three
        message[0:1] = BLOCK
        START.pack_into(message, 1, start)
        np.frombuffer(message, dtype="<f4", offset=1 + START.size)[:] = block
        outbox.send_bytes(message)
        credit -= 1
    return DONE + json.dumps({"samples": n}).encode("utf-8")


def _handle(request: dict, inbox: Connection, outbox: Connection) -> bytes:
    op = request.get("op")
    if op in ("audio", "count"):
        return _stream(request, inbox, outbox)
    if op == "probe":
        from affectstore.media.probe import probe

        info = asdict(probe(request["path"]))
        info["path"] = str(info["path"])
        return DONE + json.dumps(info).encode("utf-8")
    raise ValueError(f"unknown decoder request {op!r}")


def main(argv: list[str]) -> int:
    """Serve requests until the parent closes its end of the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    inbox = Connection(int(argv[-2]), writable=False)
    outbox = Connection(int(argv[-1]), readable=False)
    outbox.send_bytes(READY)
    while True:
        try:
            message = inbox.recv_bytes()
        except EOFError:
            return 0
        if not message.startswith(b"{"):
            continue  # an acknowledgement sent after its stream ended
        request = json.loads(message)
        try:
            reply = _handle(request, inbox, outbox)
        except _Stopped:
            reply = STOPPED
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as this file's reason
            reply = _error_reply(exc, str(request.get("path")))
        outbox.send_bytes(reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
