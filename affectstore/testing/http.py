"""A real HTTP server on localhost serving a folder (range requests included), for remote-store tests and benchmarks.

Python's `http.server` decodes each request path once (as nginx, Apache and object-store
gateways do) but answers every request whole; object stores and web servers answer
``Range`` requests, which reading a .zip over HTTP needs, so this handler does too.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """`SimpleHTTPRequestHandler` plus single-range ``Range: bytes=a-b`` requests; no directory listings."""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass  # quiet: tests and benchmarks make thousands of requests

    def list_directory(self, path):  # readers must not depend on a server's listing pages
        self.send_error(404, "No listing")
        return None

    def send_head(self):
        match = _RANGE.match(self.headers.get("Range", "").strip())
        path = self.translate_path(self.path)
        if match is None or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start_s, end_s = match.groups()
        if start_s == "":
            start, end = max(0, size - int(end_s)), size - 1
        else:
            start, end = int(start_s), min(int(end_s) if end_s else size - 1, size - 1)
        if start >= size or start > end:
            self.send_error(416, "Range not satisfiable")
            return None
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        self._remaining = None
        while remaining > 0:
            data = source.read(min(1 << 20, remaining))
            if not data:
                break
            outputfile.write(data)
            remaining -= len(data)


@contextlib.contextmanager
def serve_folder(folder: str | Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 in a thread; yields the base URL (no trailing slash)."""
    handler = functools.partial(RangeHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="affectstore-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
