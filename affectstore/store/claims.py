"""Work sharing without a scheduler: per-video claims in a folder store, and packing once.

N plain processes (one per GPU, a SLURM array without ``--shard``, several machines on
one shared file system) extract one store together: each claims a video before working
on it and skips videos that others hold, so every video is done once.

- A claim is a file ``.claims/videos/<dataset>/<key>.claim`` holding host, pid, a token
  and the start time; its modification time is the heartbeat. It is taken atomically by
  hard-linking a fully written temporary file to that name (``link`` fails when the name
  exists; this is atomic on local disks and on NFS, where ``O_EXCL`` historically was
  not), so no one ever sees half a claim.
- A background thread touches the holder's claims every ``heartbeat`` seconds. A claim
  whose heartbeat is older than ``timeout``, or whose holder on this same host is no
  longer running, is stale and may be taken over; a takeover holds a ``mkdir`` lock so
  that of several processes finding the same stale claim exactly one takes it.
- ``release`` removes a claim only if it still holds the releaser's token.

`pack_when_complete` is "pack once, by whoever finishes last": every process calls it
after its last video; it packs only when the wanted videos are all complete, under a
claim on the pack itself, and never raises for a race (it reports what happened).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from affectstore.store.errors import StoreError
from affectstore.store.keys import encode_id
from affectstore.store.store import CLAIMS_FOLDER, FeatureStore

logger = logging.getLogger(__name__)

HOST = socket.gethostname()


@dataclass(frozen=True)
class Claim:
    """Who holds a video: ``host``, ``pid``, the claim's ``token``, when it was taken (``started``)
    and its last ``heartbeat`` (both seconds since the epoch)."""

    video_id: str
    host: str
    pid: int
    token: str
    started: float
    heartbeat: float

    def describe(self) -> str:
        return f"{self.host} pid {self.pid}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class ClaimBoard:
    """Per-video claims of one dataset in a local folder store (see the module doc).

    Typical use by a runner::

        with ClaimBoard(store, "bah") as board:        # starts the heartbeat thread
            for entry in todo:
                if not board.claim(entry.id):
                    continue                           # another process has it
                if store.is_done(...):                 # finished meanwhile by someone else
                    board.release(entry.id); continue
                extract(entry)                         # write_video / record_failure ...
                board.release(entry.id)
        # leaving the block releases whatever is still held

    ``timeout`` (seconds, default 300) is how old a heartbeat may get before the claim is
    considered abandoned; ``heartbeat`` defaults to a tenth of it. ``scope`` separates
    kinds of claims ("videos", "packs"). ``lost`` lists videos whose claim another
    process took over (this process was presumed dead); the runner should not write them.
    """

    def __init__(
        self,
        store: FeatureStore | str | os.PathLike,
        dataset: str,
        *,
        timeout: float = 300.0,
        heartbeat: float | None = None,
        scope: str = "videos",
    ) -> None:
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds. Got {timeout!r} instead.")
        root = store.local_root if isinstance(store, FeatureStore) else Path(store)
        if root is None:
            raise StoreError(
                f"Claims need a local folder store (or one on a shared file system); {store.location} is not one. "
                "Use --shard I/N to split the work instead."
            )
        self.folder = Path(root) / CLAIMS_FOLDER / scope / encode_id(dataset)
        self.timeout = float(timeout)
        self.heartbeat = float(heartbeat) if heartbeat is not None else self.timeout / 10
        if not self.heartbeat > 0:
            raise ValueError(f"heartbeat must be a positive number of seconds. Got {heartbeat!r} instead.")
        self.pid = os.getpid()
        self.lost: set[str] = set()
        self._mine: dict[str, str] = {}  # video id -> token
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- claims
    def _path(self, video_id: str) -> Path:
        return self.folder / f"{encode_id(video_id)}.claim"

    def claim(self, video_id: str) -> bool:
        """Take the claim on ``video_id``; False when a live process holds it. Idempotent for the holder."""
        with self._lock:
            if video_id in self._mine:
                return True
        path = self._path(video_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            token = uuid.uuid4().hex
            if self._create(path, video_id, token):
                with self._lock:
                    self._mine[video_id] = token
                return True
            current = self.holder(video_id)
            if current is None:
                continue  # released in between: try again
            if not self._stale(current):
                return False
            if not self._take_over(path, current):
                return False
        return False

    def release(self, video_id: str) -> None:
        """Give up the claim on ``video_id`` (only if this process still holds it)."""
        with self._lock:
            token = self._mine.pop(video_id, None)
        if token is None:
            return
        path = self._path(video_id)
        current = self.holder(video_id)
        if current is not None and current.token == token:
            path.unlink(missing_ok=True)

    def release_all(self) -> None:
        """Release every claim this board holds."""
        with self._lock:
            held = list(self._mine)
        for video_id in held:
            self.release(video_id)

    def held(self) -> list[str]:
        """Videos this board holds claims on."""
        with self._lock:
            return list(self._mine)

    def holder(self, video_id: str) -> Claim | None:
        """The current claim on ``video_id``, None when unclaimed (or unreadable, which a writer just made)."""
        path = self._path(video_id)
        try:
            data = path.read_bytes()
            mtime = path.stat().st_mtime
            doc = json.loads(data)
            return Claim(doc["id"], doc["host"], int(doc["pid"]), doc["token"], float(doc["started"]), mtime)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            # Claims are written whole before they get their name, so this is damage: treat it
            # as a claim with no heartbeat, which the timeout lets others take over.
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                return None
            return Claim(video_id, "?", -1, "?", mtime, mtime)

    def claimed_by_others(self, video_ids: Iterable[str]) -> int:
        """How many of ``video_ids`` live processes other than this one hold (for a run's summary)."""
        with self._lock:
            mine = set(self._mine)
        count = 0
        for vid in video_ids:
            if vid in mine:
                continue
            current = self.holder(vid)
            if current is not None and not self._stale(current):
                count += 1
        return count

    def _stale(self, claim: Claim) -> bool:
        if claim.host == HOST and claim.pid > 0 and claim.pid != self.pid and not _pid_alive(claim.pid):
            return True
        return time.time() - claim.heartbeat > self.timeout

    def _create(self, path: Path, video_id: str, token: str) -> bool:
        doc = {"id": video_id, "host": HOST, "pid": self.pid, "token": token, "started": time.time()}
        tmp = path.with_name(f"{path.name}.{token}.tmp")
        tmp.write_text(json.dumps(doc))
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):  # file systems without hard links
                try:
                    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return False
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps(doc))
                return True
            raise
        finally:
            tmp.unlink(missing_ok=True)

    def _take_over(self, path: Path, stale: Claim) -> bool:
        """Remove ``stale`` under the takeover lock; True when this process removed it."""
        lock = path.with_name(path.name + ".takeover")
        try:
            os.mkdir(lock)
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime > self.timeout:
                    os.rmdir(lock)  # its holder died inside the takeover (a millisecond window)
            except OSError:
                pass
            return False
        try:
            current = self.holder(stale.video_id)
            if current is None:
                return True
            if current.token != stale.token or not self._stale(current):
                return False
            logger.info("taking over the stale claim of %s by %s", stale.video_id, stale.describe())
            path.unlink(missing_ok=True)
            return True
        finally:
            os.rmdir(lock)

    # ------------------------------------------------------------ heartbeat
    def beat(self) -> None:
        """Refresh the heartbeat of every claim held; notes claims that others took over in ``lost``."""
        with self._lock:
            held = dict(self._mine)
        for video_id, token in held.items():
            current = self.holder(video_id)
            if current is None or current.token != token:
                if video_id not in self.lost:
                    logger.warning(
                        "lost the claim on %s to %s: this process was presumed dead (no heartbeat for %g s)",
                        video_id, current.describe() if current else "no one", self.timeout,
                    )
                self.lost.add(video_id)
                with self._lock:
                    self._mine.pop(video_id, None)
                continue
            try:
                os.utime(self._path(video_id))
            except FileNotFoundError:
                continue

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.beat()
            except Exception:  # noqa: BLE001 - a heartbeat hiccup must not end the thread
                logger.warning("claim heartbeat failed", exc_info=True)

    def start(self) -> "ClaimBoard":
        """Start the heartbeat thread (the ``with`` block does this)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="claims-heartbeat", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the heartbeat thread and release every claim."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.release_all()

    def __enter__(self) -> "ClaimBoard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class PackOutcome:
    """What `pack_when_complete` did: ``status`` is "packed", "current" (a pack was already there),
    "incomplete" (``missing`` wanted videos are not complete yet), "busy" (another process is
    packing: ``holder``), "empty" (nothing to pack, or a text feature) or "failed" (``reason``)."""

    status: str
    name: str | None = None
    missing: int = 0
    holder: str | None = None
    reason: str | None = None


def pack_when_complete(
    store: FeatureStore, dataset: str, feature: str, wanted: Iterable[str] | None = None, *, timeout: float = 300.0
) -> PackOutcome:
    """Pack ``dataset/feature`` if every ``wanted`` video is complete, once, whoever calls it last.

    Safe to call from any number of processes at once: only the holder of the pack's
    claim builds it, the others return "busy" at once; a store changed or damaged
    underneath returns "failed" with the reason (logged as a warning), never raises.
    """
    from affectstore.store import pack as packing

    try:
        done = set(store.completed(dataset, feature))
        if wanted is not None:
            missing = len(set(wanted) - done)
            if missing:
                return PackOutcome("incomplete", missing=missing)
        if not done or store.provenance(dataset, feature)["kind"] == "text":
            return PackOutcome("empty")
        current = packing.current_pack(store, dataset, feature, store.done_keys(dataset, feature))
        if current is not None:
            return PackOutcome("current", current)
        board = ClaimBoard(store, dataset, timeout=timeout, scope="packs")
        if not board.claim(feature):
            holder = board.holder(feature)
            return PackOutcome("busy", holder=holder.describe() if holder else None)
        with board:
            name = store.pack(dataset, feature)
        if name is None:
            return PackOutcome("failed", reason="the complete set changed while packing; pack again later")
        from affectstore.store.listing import write_listing

        write_listing(store)  # so the folder can be served over http(s) as it is
        return PackOutcome("packed", name)
    except (StoreError, OSError) as exc:
        logger.warning("packing %s/%s skipped: %s (run `affect store pack %s` later)", dataset, feature, exc, store.location)
        return PackOutcome("failed", reason=str(exc))
