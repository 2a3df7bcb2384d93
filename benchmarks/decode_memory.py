"""Peak memory of streamed audio decoding: a 20-minute video against a 1-minute one.

    .venv/bin/python benchmarks/decode_memory.py [--minutes 1 20] [--workdir DIR]

Generates an mp4 per length (H.264 64x48 at 2 fps + AAC 48 kHz stereo, a tone plus
noise), then decodes each in a fresh subprocess, so that nothing is shared, with
`affectstore.media.stream_audio` (30 s windows, to 16 kHz mono) and, for contrast,
`load_audio` (whole file). Each worker reports:
- peak RSS: the process's peak resident set size, including the Python interpreter,
  numpy, PyAV/FFmpeg and their buffers. Read from VmHWM in /proc/self/status (Linux),
  not ru_maxrss: ru_maxrss survives exec, so a child spawned by a parent that grew
  while generating the 20-minute file would report the parent's peak. ru_maxrss is the
  fallback where /proc is absent;
- tracemalloc peak: the peak of memory allocated through Python's allocators, which
  includes numpy array data (numpy reports its allocations to tracemalloc) but not
  FFmpeg's own buffers.
The target is peak RSS(20 min, streamed) <= 1.3 x peak RSS(1 min, streamed).
"""

from __future__ import annotations

import argparse
import fractions
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def generate(path: Path, minutes: float, sample_rate: int = 48_000, fps: int = 2) -> Path:
    """Encode a long test video block by block so generation itself stays small in memory."""
    import av

    seconds = minutes * 60
    rng = np.random.default_rng(0)
    container = av.open(str(path), mode="w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    audio = container.add_stream("aac", rate=sample_rate)
    audio.layout = "stereo"
    block = 1024
    n_samples = int(seconds * sample_rate)
    next_frame = 0
    for start in range(0, n_samples, block):
        t = (start + np.arange(min(block, n_samples - start))) / sample_rate
        tone = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(len(t))
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.tile(tone.astype(np.float32), (2, 1))), format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = sample_rate, start
        for packet in audio.encode(frame):
            container.mux(packet)
        while next_frame / fps <= start / sample_rate:
            image = np.full((48, 64, 3), 60, dtype=np.uint8)
            x = next_frame % 52
            image[16:32, x : x + 12] = 255
            vframe = av.VideoFrame.from_ndarray(image, format="rgb24")
            vframe.pts = next_frame
            vframe.time_base = fractions.Fraction(1, fps)
            for packet in video.encode(vframe):
                container.mux(packet)
            next_frame += 1
    for stream in (audio, video):
        for packet in stream.encode(None):
            container.mux(packet)
    container.close()
    return path


def worker(path: str, mode: str) -> None:
    """Decode ``path`` and print one JSON line of measurements (runs in a fresh process)."""
    import tracemalloc

    from affectstore.media import load_audio, stream_audio

    rss_before = peak_rss_kib()
    tracemalloc.start()
    t0 = time.perf_counter()
    n = 0
    checksum = 0.0
    if mode == "stream":
        for _, chunk in stream_audio(path, window=30.0):
            n += len(chunk)
            checksum += float(np.abs(chunk).sum())
    else:
        audio = load_audio(path)
        n, checksum = len(audio), float(np.abs(audio).sum())
        del audio
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = peak_rss_kib()
    print(json.dumps({"samples": n, "decode_s": seconds, "rss_kib": rss, "rss_after_imports_kib": rss_before, "tracemalloc_peak_b": peak, "checksum": checksum}))


def peak_rss_kib() -> int:
    """Peak resident set size of this process in KiB (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure(path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", str(path), mode], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs=2, default=(1.0, 20.0), metavar=("SHORT", "LONG"))
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the generated videos (default: a temp folder)")
    parser.add_argument("--worker", nargs=2, metavar=("PATH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {}
        for minutes in args.minutes:
            path = workdir / f"talk_{minutes:g}min.mp4"
            t0 = time.perf_counter()
            generate(path, minutes)
            print(f"generated {path.name} ({path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s", flush=True)
            for mode in ("stream", "full"):
                results[(minutes, mode)] = r = measure(path, mode)
                print(
                    f"{minutes:>5g} min  {mode:<6}  peak RSS {r['rss_kib'] / 1024:7.1f} MiB "
                    f"(after imports {r['rss_after_imports_kib'] / 1024:6.1f} MiB)  "
                    f"tracemalloc peak {r['tracemalloc_peak_b'] / 2**20:7.2f} MiB  "
                    f"{r['samples'] / 16000:8.1f} s of audio in {r['decode_s']:5.1f} s",
                    flush=True,
                )
    short, long = args.minutes
    rss_ratio = results[(long, "stream")]["rss_kib"] / results[(short, "stream")]["rss_kib"]
    tm_ratio = results[(long, "stream")]["tracemalloc_peak_b"] / results[(short, "stream")]["tracemalloc_peak_b"]
    print(f"streamed peak RSS ratio {long:g} min / {short:g} min: {rss_ratio:.3f} (target <= 1.3)")
    print(f"streamed tracemalloc peak ratio: {tm_ratio:.3f}")
    return 0 if rss_ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
