"""Reliability: damaged bytes in a store, hostile media files, and what the protection costs.

Sections (run all, or some with --only):

- ``byteflip``: a store with a frame feature (packed) and a text feature; for every kind
  of file (video values/times chunks and their metadata, the video group, the completion
  mark, text chunks, the pack's values/times/offsets/keys chunks and metadata, the
  provenance, group documents, a failure record) it flips one random byte, ``--flips``
  times at different positions, and checks that `verify` names that very file; then it
  truncates and deletes each chunk. For chunks it also checks that `load_feature` and
  `read_video` refuse, and that `verify --repair` drops exactly the damaged video so that
  rewriting it makes the store verify clean again.
- ``badmedia``: a folder of hostile and good media (`affectstore.testing.bad_media`,
  including 8- and 16-channel WAVs and a file that crashes the decoder natively), decoded
  through `IsolatedDecoder` in one run: each bad file must fail with its own reason, each
  good one must equal the in-process decode, and the run must survive the crash. The same
  folder as a clips dataset through `affect data check --probe`. For contrast, the
  pre-fix planar conversion of the 16-channel WAV, in a child process.
- ``overhead``: the isolated decoder against in-process decoding, CRC-checked loads
  against the same data stored without checksums, and verify's throughput; medians
  over alternating repeats, ratios from the same run.

    python benchmarks/reliability.py                      # everything, ~2 minutes
    python benchmarks/reliability.py --only byteflip --flips 50

- ``extractbad``: the same bad-media folder as a clips dataset through `run_extraction`
  (eGeMAPS, isolated decoding, the crashing worker in place of the decoder's): the run
  completes, each bad file is recorded with its own reason, the good ones equal a clean run.
- ``sigkill``: `affect extract` (eGeMAPS + a tiny wav2vec2, ``--batch-size 1``, default
  settings) killed with SIGKILL at ``--kills`` random moments, resumed each time; after every
  kill the store must verify clean and every complete video must equal an uninterrupted run
  (none lost, none corrupted), and the last resume must finish them all.
- ``processes``: four `affect extract` processes without ``--shard`` on one store at once:
  all exit 0 and every video is extracted by exactly one of them.

Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from affectstore.store import DamagedStoreError, FeatureStore, encode_id
from affectstore.store import chunks
from affectstore.store import store as store_module
from affectstore.store.verify import verify_store

PROV = {"extractor": "synthetic", "config_hash": "h1", "dim": 16, "dtype": "float16", "kind": "frames", "rate": 50.0}
VIDEOS = [f"subject {i // 4}/clip {i}.mp4" for i in range(12)]
TARGET = VIDEOS[5]


class Checks:
    """Counts passed and failed checks and prints each failure."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    def check(self, ok: bool, what: str) -> bool:
        if ok:
            self.passed += 1
        else:
            self.failed.append(what)
            print(f"  FAILED: {what}")
        return ok


# ------------------------------------------------------------------ byteflip
def _build_store(path: Path) -> str:
    store = FeatureStore.open(path, mode="a")
    store.create_feature("ds", "feat", PROV)
    rng = np.random.default_rng(0)
    for i, vid in enumerate(VIDEOS):
        n = 20 + 7 * i
        store.write_video("ds", "feat", vid, rng.standard_normal((n, 16)), np.arange(n) / 50, config_hash="h1")
    store.create_feature("ds", "asr", dict(PROV, dim=0, dtype="str", kind="text", rate=None))
    store.write_text("ds", "asr", TARGET, [0.0, 1.2], [1.2, 2.0], ["so, well", "maybe é"], config_hash="h1")
    store.record_failure("ds", "feat", "broken.mp4", "decode", "file is empty", config_hash="h1")
    return store.pack("ds", "feat")


def _file_kinds(pack: str) -> list[tuple[str, str, str]]:
    """(kind, file below the store, what repair should do: video, pack, other)."""
    v, t = f"ds/feat/videos/{encode_id(TARGET)}", f"ds/asr/videos/{encode_id(TARGET)}"
    p = f"ds/feat/packed/{pack}"
    return [
        ("video values chunk", f"{v}/values/c/0/0", "video"),
        ("video times chunk", f"{v}/times/c/0", "video"),
        ("video values metadata", f"{v}/values/zarr.json", "video"),
        ("video times metadata", f"{v}/times/zarr.json", "video"),
        ("video group", f"{v}/zarr.json", "video"),
        ("completion mark", f"ds/feat/done/{encode_id(TARGET)}/zarr.json", "video"),
        ("text chunk", f"{t}/text/c/0", "video"),
        ("text start chunk", f"{t}/start/c/0", "video"),
        ("packed values chunk", f"{p}/values/c/0/0", "pack"),
        ("packed times chunk", f"{p}/times/c/0", "pack"),
        ("packed offsets chunk", f"{p}/offsets/c/0", "pack"),
        ("packed keys chunk", f"{p}/keys/c/0", "pack"),
        ("packed values metadata", f"{p}/values/zarr.json", "pack"),
        ("pack attributes", f"{p}/zarr.json", "pack"),
        ("provenance", "ds/feat/zarr.json", "other"),
        ("group document", "ds/feat/done/zarr.json", "other"),
        ("dataset group", "ds/zarr.json", "other"),
        ("failure record", f"ds/feat/failed/{encode_id('broken.mp4')}/zarr.json", "other"),
    ]


def _names(report, rel: str) -> bool:
    return any(f": {rel}: " in e for e in report.errors)


def section_byteflip(work: Path, args, checks: Checks) -> None:
    clean = work / "clean.zarr"
    pack = _build_store(clean)
    rng = random.Random(args.seed)
    print(f"\n## byteflip: one flipped byte, {args.flips} positions per kind of file\n")
    print("| kind of file | bytes | flips named by verify | readers refuse | repair, rewrite: verify clean |")
    print("|---|---|---|---|---|")
    for kind, rel, repair in _file_kinds(pack):
        size = (clean / rel).stat().st_size
        named = 0
        refused = "n/a"
        repaired = "n/a"
        for k in range(args.flips):
            trial = work / f"trial-{k}.zarr"
            shutil.copytree(clean, trial, symlinks=True)
            data = bytearray((trial / rel).read_bytes())
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
            (trial / rel).write_bytes(bytes(data))
            report = verify_store(FeatureStore.open(trial))
            if checks.check(_names(report, rel), f"{kind}: a flip at byte {pos} of {rel} not named: {report.errors}"):
                named += 1
            if k == 0 and "/c/" in rel and "/feat/" in rel:
                refused = str(_readers_refuse(trial, rel, checks, kind))
            if k == 0 and repair == "video" and "/feat/" in rel:
                repaired = str(_repair_and_rewrite(trial, checks, kind))
            shutil.rmtree(trial)
        print(f"| {kind} | {size} | {named}/{args.flips} | {refused} | {repaired} |")
    print("\n| chunk damage | verify names it | readers refuse |")
    print("|---|---|---|")
    for kind, rel, _ in _file_kinds(pack):
        if "/c/" not in rel or "/feat/" not in rel:
            continue
        for how in ("truncated by 3 bytes", "deleted"):
            trial = work / "trial-cut.zarr"
            shutil.copytree(clean, trial, symlinks=True)
            if how == "deleted":
                (trial / rel).unlink()
            else:
                (trial / rel).write_bytes((trial / rel).read_bytes()[:-3])
            named = _names(verify_store(FeatureStore.open(trial)), rel)
            checks.check(named, f"{kind} {how}: not named")
            refused = _readers_refuse(trial, rel, checks, f"{kind} {how}")
            print(f"| {kind}, {how} | {named} | {refused} |")
            shutil.rmtree(trial)


def _readers_refuse(trial: Path, rel: str, checks: Checks, kind: str) -> bool:
    store = FeatureStore.open(trial)
    ok = True
    for label, load in (("load_feature", lambda: store.load_feature("ds", "feat", pack="packed" in rel)),
                        ("read_video", lambda: store.read_video("ds", "feat", TARGET))):
        if label == "read_video" and "packed" in rel:
            continue
        try:
            load()
            ok = checks.check(False, f"{kind}: {label} read damaged data without an error") and ok
        except DamagedStoreError as exc:
            ok = checks.check(rel in str(exc), f"{kind}: {label} error does not name {rel}: {exc}") and ok
    return ok


def _repair_and_rewrite(trial: Path, checks: Checks, kind: str) -> bool:
    before = set(FeatureStore.open(trial).completed("ds", "feat"))
    report = verify_store(FeatureStore.open(trial, mode="a"), repair=True)
    store = FeatureStore.open(trial, mode="a")
    after = set(store.completed("ds", "feat"))
    ok = checks.check(report.ok and before - after <= {TARGET}, f"{kind}: repair dropped {sorted(before - after)}")
    if TARGET not in after:
        n = 20 + 7 * VIDEOS.index(TARGET)
        store.write_video("ds", "feat", TARGET, np.zeros((n, 16)), np.arange(n) / 50, config_hash="h1")
    ok = checks.check(verify_store(store).ok, f"{kind}: store not clean after repair and rewrite") and ok
    return ok


# ------------------------------------------------------------------ badmedia
_PLANAR = """
import sys, av
c = av.open(sys.argv[1]); s = c.streams.audio[0]; r = None
for frame in c.decode(s):
    r = r or av.AudioResampler(format="fltp", layout=frame.layout.name, rate=16000)
    for out in r.resample(frame):
        out.to_ndarray()
print("decoded")
"""


def section_badmedia(work: Path, args, checks: Checks) -> None:
    from affectstore.datasets.check import check_dataset
    from affectstore.media import MediaError, load_audio
    from affectstore.media.isolated import IsolatedDecoder
    from affectstore.testing.bad_media import CRASHING_WORKER, build_bad_media

    folder = work / "media"
    cases = build_bad_media(folder, crash_name="crash-in-ffmpeg.wav")
    cases.append(cases.pop(next(i for i, c in enumerate(cases) if c.name == "crash-in-ffmpeg.wav")))
    cases.insert(len(cases) // 2, cases.pop())  # the crash in the middle: files after it must still decode
    print(f"\n## badmedia: {len(cases)} files through the isolated decoder, one run\n")
    print("| file | expected | got | reason |")
    print("|---|---|---|---|")
    t0 = time.perf_counter()
    with IsolatedDecoder(command=[sys.executable, "-c", CRASHING_WORKER]) as decoder:
        for case in cases:
            try:
                audio = decoder.load_audio(case.path)
            except MediaError as exc:
                got, reason = type(exc).__name__, exc.cause
                ok = case.error is not None and isinstance(exc, case.error) and case.reason in exc.cause
            else:
                got, reason = f"{len(audio)} samples", case.note
                ok = case.error is None and np.array_equal(audio, load_audio(case.path))
                reason += ", equal to the in-process decode" if ok else ", DIFFERS from the in-process decode"
            checks.check(ok, f"{case.name}: expected {case.error.__name__ if case.error else 'audio'}, got {got} ({reason})")
            expected = case.error.__name__ if case.error else "audio"
            print(f"| {case.name} | {expected} | {got} | {reason.replace('|', '/')} |")
        restarts = decoder.restarts
    print(f"\n{len(cases)} files in {time.perf_counter() - t0:.1f} s; decoder restarts: {restarts} "
          "(the native crash cost its own file only)")
    checks.check(restarts == 1, f"expected 1 decoder restart, got {restarts}")

    sixteen = next(c.path for c in cases if c.name == "sixteen-channels.wav")
    before = subprocess.run([sys.executable, "-c", _PLANAR, str(sixteen)], capture_output=True, text=True)
    print(f"before the fix: planar float conversion of the 16-channel WAV in a child process: exit {before.returncode}"
          + (" (SIGSEGV)" if before.returncode == -11 else ""))

    labelled = [c for c in cases if c.name != "crash-in-ffmpeg.wav"]
    (folder / "labels.csv").write_text("clip,label\n" + "".join(f"{c.name},{'good' if c.error is None else 'bad'}\n" for c in labelled))
    report = check_dataset("clips", folder, probe_media=True, targets="label")
    named = {p.file.name for p in report.problems}
    bad = {c.name for c in labelled if c.error is not None}
    checks.check(named == bad, f"data check --probe: problems for {sorted(named ^ bad)} differ from the bad files")
    print(f"`affect data check clips {folder.name} --probe`: {len(report.problems)} problems, one per bad file: {named == bad}; "
          f"no problem for the {len(labelled) - len(bad)} good files")


# ------------------------------------------------------------------ overhead
def _alternating(fns: dict, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm up
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def section_overhead(work: Path, args, checks: Checks) -> None:
    from affectstore.media import load_audio
    from affectstore.media.isolated import IsolatedDecoder
    from affectstore.testing.datasets import make_media

    print("\n## overhead\n")
    files = [make_media(work / f"talk{i}.m4a", duration=30.0, sample_rate=48_000, channels=2) for i in range(6)]
    with IsolatedDecoder() as decoder:
        decoder.count_samples(files[0])  # the worker is up
        med = _alternating({
            "in-process": lambda: [load_audio(f) for f in files],
            "isolated": lambda: [decoder.load_audio(f) for f in files],
        }, args.repeats)
    seconds = 30.0 * len(files)
    print(f"decode {len(files)} x 30 s AAC stereo 48 kHz to 16 kHz mono: in-process {med['in-process']:.3f} s, "
          f"isolated {med['isolated']:.3f} s (x{med['isolated'] / med['in-process']:.2f}; "
          f"{seconds / med['isolated']:.0f} s of audio per s isolated)")
    t0 = time.perf_counter()
    IsolatedDecoder().probe(files[0])
    print(f"starting a worker and probing one file: {time.perf_counter() - t0:.3f} s (paid once, and after each crash)")

    rng = np.random.default_rng(1)
    data = {f"{i:04d}": rng.standard_normal((int(rng.integers(50, 600)), 1024)).astype(np.float16) for i in range(args.videos)}
    gb = sum(v.nbytes for v in data.values()) / 1e9
    stores = {}
    for label, layout in (("crc32c", store_module.LAYOUT), ("no checksums", chunks.LAYOUT_UNCHECKED)):
        saved = store_module.LAYOUT
        store_module.LAYOUT = layout
        try:
            store = FeatureStore.open(work / f"{label.replace(' ', '-')}.zarr", mode="a")
            store.create_feature("emi", "hubert", dict(PROV, dim=1024))
        finally:
            store_module.LAYOUT = saved
        for k, v in data.items():
            store.write_video("emi", "hubert", k, v, np.arange(len(v)) / 50, config_hash="h1")
        store.pack("emi", "hubert")
        stores[label] = FeatureStore.open(store.location)
    fns = {}
    for label, store in stores.items():
        fns[f"{label}, packed"] = lambda s=store: s.load_feature("emi", "hubert", pack=True)
        fns[f"{label}, per video"] = lambda s=store: s.load_feature("emi", "hubert", pack=False)
    med = _alternating(fns, args.repeats)
    print(f"\nload {args.videos} videos x 1024 float16 ({gb:.2f} GB), warm cache, median of {args.repeats}:\n")
    print("| load | median s | x no checksums |")
    print("|---|---|---|")
    for name, sec in med.items():
        base = med["no checksums, " + name.split(", ")[1]]
        print(f"| {name} | {sec:.3f} | {sec / base:.2f} |")
    t0 = time.perf_counter()
    report = verify_store(stores["crc32c"])
    dt = time.perf_counter() - t0
    size = stores["crc32c"].size_bytes() / 1e6
    checks.check(report.ok, "overhead store does not verify")
    print(f"\nverify of that store ({size:.0f} MB with its pack): {dt:.2f} s, {size / dt:.0f} MB/s")


# ------------------------------------------------------------------ extraction under hostile input and kills
def _affect(*args: str) -> list[str]:
    return [sys.executable, "-c", "from affectstore.cli import app; app(prog_name='affect')", *args]


def _same_arrays(a: FeatureStore, b: FeatureStore, feature: str, vid: str) -> bool:
    x, y = a.read_video("clips", feature, vid), b.read_video("clips", feature, vid)
    return np.array_equal(x.times, y.times) and np.allclose(x.values, y.values, atol=1e-5, rtol=1e-4)


def section_extractbad(work: Path, args, checks: Checks) -> None:
    import functools

    from affectstore.extract.runner import RunOptions, run_extraction
    from affectstore.media import isolated
    from affectstore.testing.bad_media import CRASHING_WORKER, build_bad_media

    folder = work / "media"
    cases = build_bad_media(folder, crash_name="crash-in-ffmpeg.wav")
    (folder / "labels.csv").write_text("clip,label\n" + "".join(f"{c.name},x\n" for c in cases))
    good = work / "good"
    good.mkdir()
    for case in cases:
        if case.error is None and not case.name.startswith("crash"):
            shutil.copyfile(case.path, good / case.name)
    (good / "labels.csv").write_text("clip,label\n" + "".join(f"{p.name},x\n" for p in sorted(good.iterdir()) if p.name != "labels.csv"))
    quiet = RunOptions(progress=False)
    original = isolated.IsolatedDecoder.__init__
    isolated.IsolatedDecoder.__init__ = functools.partialmethod(original, command=[sys.executable, "-c", CRASHING_WORKER])
    try:
        t0 = time.perf_counter()
        summary = run_extraction("clips", folder, ["egemaps"], work / "bad.zarr", options=quiet)
        seconds = time.perf_counter() - t0
    finally:
        isolated.IsolatedDecoder.__init__ = original
    clean = run_extraction("clips", good, ["egemaps"], work / "clean.zarr", options=quiet)
    reasons = {f.video_id: f for f in summary.failures if f.feature == "egemaps"}
    print(f"\n## extractbad: {len(cases)} files as one clips dataset, eGeMAPS, isolated decoding\n")
    print("| file | expected | recorded |")
    print("|---|---|---|")
    for case in cases:
        if case.name.startswith("crash"):
            got = reasons.get(case.name)
            ok = got is not None and "SIGSEGV" in got.reason
            print(f"| {case.name} | decoder crash (SIGSEGV) | {got.stage + ': ' + got.reason if got else 'complete'} |")
        elif case.error is None:
            ok = case.name not in reasons and _same_arrays(FeatureStore.open(work / "bad.zarr"), FeatureStore.open(work / "clean.zarr"), "egemaps", case.name)
            print(f"| {case.name} | audio | {'complete, equal to a clean run' if ok else 'DIFFERS or failed'} |")
        else:
            got = reasons.get(case.name)
            # a file the labels name but the folder lacks is caught by the adapter, before decoding
            ok = got is not None and (case.reason in got.reason or (case.error.__name__ == "MissingMediaError" and "missing" in got.reason))
            print(f"| {case.name} | {case.error.__name__}: {case.reason} | {(got.stage + ': ' + got.reason).replace('|', '/') if got else 'complete'} |")
        checks.check(ok, f"extractbad: {case.name}")
    checks.check(clean.failed == 0, "extractbad: the clean run of the good files failed somewhere")
    print(f"\nthe run completed in {seconds:.1f} s: done {summary.done}, failed {summary.failed}")


def section_sigkill(work: Path, args, checks: Checks) -> None:
    import signal

    from affectstore.extract.runner import RunOptions, run_extraction
    from affectstore.testing.datasets import make_media
    from affectstore.testing.models import build_wav2vec2

    rng = random.Random(args.seed)
    root = work / "clips"
    ids = []
    for k in range(args.kill_clips):
        clip = f"spk{k % 3}/clip_{k:02d}{('.wav', '.flac', '.mp4')[k % 3]}"
        make_media(root / clip, 1.0 + 0.5 * (k % 5), frequency=200 + 20 * k, size=(32, 32), fps=5.0)
        ids.append(clip)
    (root / "labels.csv").write_text("clip,label\n" + "".join(f"{c},x\n" for c in ids))
    model = str(build_wav2vec2(work / "w2v"))
    features, settings = "egemaps,wav2vec2", {"wav2vec2": {"model": model}}
    outputs = ["egemaps", "egemaps-lld", "wav2vec2"]
    run_extraction("clips", root, features.split(","), work / "reference.zarr", settings=settings, batch_size=1,
                   options=RunOptions(progress=False))
    reference = FeatureStore.open(work / "reference.zarr")
    path = work / "killed.zarr"
    command = _affect("extract", "clips", str(root), "--features", features, "--store", str(path),
                      "--set", f"wav2vec2.model={model}", "--batch-size", "1", "--no-progress")
    complete_before: set[tuple[str, str]] = set()
    lost = corrupted = kills = finished = 0
    while kills < args.kills:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.5, args.kill_max_s))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            kills += 1
        else:
            finished += 1
            shutil.rmtree(path)  # it finished before the kill: start again from nothing
            complete_before = set()
            continue
        store = FeatureStore.open(path)
        report = verify_store(store)
        checks.check(report.ok, f"sigkill {kills}: verify after the kill: {report.errors[:3]}")
        complete = {(f, v) for f in outputs if f in store.features("clips") for v in store.completed("clips", f)}
        lost += len(complete_before - complete)
        corrupted += sum(not _same_arrays(store, reference, f, v) for f, v in complete - complete_before)
        complete_before = complete
    summary = run_extraction("clips", root, features.split(","), path, settings=settings, batch_size=1, options=RunOptions(progress=False))
    final = FeatureStore.open(path)
    all_done = all(sorted(final.completed("clips", f)) == sorted(ids) for f in outputs)
    corrupted += sum(not _same_arrays(final, reference, f, v) for f in outputs for v in ids)
    checks.check(lost == 0 and corrupted == 0 and all_done and summary.failed == 0,
                 f"sigkill: lost {lost}, corrupted {corrupted}, all done {all_done}, failed {summary.failed}")
    print(f"\n## sigkill: {kills} SIGKILLs at random moments (0.5-{args.kill_max_s:g} s after start), {args.kill_clips} clips, "
          f"eGeMAPS + tiny wav2vec2, --batch-size 1\n")
    print(f"videos lost {lost}, corrupted {corrupted}; the last resume finished all {len(ids)} clips: {all_done}; "
          f"runs that finished before their kill (started again on a fresh store): {finished}")


def section_processes(work: Path, args, checks: Checks) -> None:
    import re

    from affectstore.testing.datasets import make_media

    root = work / "clips"
    ids = [f"clip_{k:03d}.wav" for k in range(args.process_clips)]
    for k, clip in enumerate(ids):
        make_media(root / clip, 1.0 + 0.2 * (k % 4), frequency=150 + 5 * k)
    (root / "labels.csv").write_text("clip,label\n" + "".join(f"{c},x\n" for c in ids))
    store = work / "shared.zarr"
    command = _affect("extract", "clips", str(root), "--features", "egemaps", "--store", str(store), "--no-progress")
    t0 = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [p.communicate() for p in processes]
    seconds = time.perf_counter() - t0
    codes = [p.returncode for p in processes]
    done = [int(m.group(1)) if (m := re.search(r"done (\d+),", out)) else -1 for out, _ in outputs]
    st = FeatureStore.open(store)
    complete = sorted(st.completed("clips", "egemaps")) == ids
    checks.check(codes == [0] * 4 and sum(done) == len(ids) and complete,
                 f"processes: exit codes {codes}, videos done per process {done} (sum must be {len(ids)}), complete {complete}")
    print(f"\n## processes: 4 unsharded `affect extract` processes on one store, {len(ids)} clips, eGeMAPS\n")
    print(f"exit codes {codes}; videos extracted per process {done} = {sum(done)} (each once); store complete: {complete}; "
          f"{seconds:.1f} s wall")


SECTIONS = {
    "byteflip": section_byteflip, "badmedia": section_badmedia, "overhead": section_overhead,
    "extractbad": section_extractbad, "sigkill": section_sigkill, "processes": section_processes,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=sorted(SECTIONS), help="run only this section (repeatable)")
    parser.add_argument("--flips", type=int, default=20, help="random byte flips per kind of file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--videos", type=int, default=400, help="videos of the overhead store")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the sigkill section")
    parser.add_argument("--kill-clips", type=int, default=40)
    parser.add_argument("--kill-max-s", type=float, default=6.0, help="latest kill, seconds after a start")
    parser.add_argument("--process-clips", type=int, default=60)
    args = parser.parse_args()
    checks = Checks()
    work = Path(tempfile.mkdtemp(prefix="affect-reliability-", dir=args.workdir))
    try:
        for name in args.only or list(SECTIONS):
            folder = work / name
            folder.mkdir()
            SECTIONS[name](folder, args, checks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{checks.passed} checks passed, {len(checks.failed)} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
