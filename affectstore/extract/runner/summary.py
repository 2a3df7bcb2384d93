"""What a run did: counts, amounts per input, timings, failures."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FailureRecord:
    video_id: str
    feature: str
    stage: str
    reason: str


@dataclass
class RunSummary:
    """What a run did. ``done``/``failed`` count videos (failed: at least one feature set failed);
    ``skipped``: videos of the selection that were complete already. ``amounts`` holds what each
    input fed (``audio s``, ``faces``, ``frames``, ``segments``)."""

    dataset: str
    store: str
    features: list[str]
    selected: int = 0
    planned: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    #: videos another process (sharing the store through claims) did or was doing
    elsewhere: int = 0
    left_by_limit: int = 0
    amounts: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    load_seconds: float = 0.0
    failures: list[FailureRecord] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)
    packed: list[str] = field(default_factory=list)
    #: (0-based index, count); the text shows it 1-based, as users type it.
    shard: tuple[int, int] | None = None
    #: videos of the dataset that belong to the other shards
    other_shards: int = 0
    #: feature -> videos that lack its input (faces of an audio-only clip): left out, not failed
    not_applicable: dict[str, int] = field(default_factory=dict)

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio decoded."""
        return self.amounts.get("audio s", 0.0)

    @property
    def work_seconds(self) -> float:
        """Wall-clock seconds after planning and model loading."""
        return max(0.0, self.wall_seconds - self.load_seconds)

    @property
    def videos_per_second(self) -> float:
        return (self.done + self.failed) / self.work_seconds if self.work_seconds > 0 else 0.0

    @property
    def audio_per_second(self) -> float:
        """Audio seconds processed per wall-clock second (x real time), model loading left out."""
        return self.audio_seconds / self.work_seconds if self.work_seconds > 0 else 0.0

    def rate(self, unit: str) -> float:
        """Amount of ``unit`` fed per wall-clock second of work."""
        return self.amounts.get(unit, 0.0) / self.work_seconds if self.work_seconds > 0 else 0.0

    def text(self) -> str:
        shard = f" (shard {self.shard[0] + 1}/{self.shard[1]})" if self.shard else ""
        fed = ", ".join(f"{amount:.1f} {unit} = {self.rate(unit):.1f} {unit}/s" for unit, amount in self.amounts.items())
        lines = [
            f"{self.dataset} -> {self.store}{shard}: features {', '.join(self.features)}",
            f"done {self.done}, skipped {self.skipped}, failed {self.failed} of {self.selected} selected videos"
            + (f", {self.elsewhere} done by other processes" if self.elsewhere else "")
            + (f" ({self.left_by_limit} left by --limit)" if self.left_by_limit else "")
            + (f"; other shards own {self.other_shards}" if self.other_shards else ""),
            f"{self.wall_seconds:.1f} s ({self.load_seconds:.1f} s planning and loading): {self.videos_per_second:.2f} videos/s"
            + (f"; {fed}" if fed else ""),
        ]
        if self.packed:
            lines.append(f"packed: {', '.join(self.packed)}")
        if self.not_applicable:
            by_count: dict[int, list[str]] = {}
            for name, n in self.not_applicable.items():
                by_count.setdefault(n, []).append(name)
            for n, names in by_count.items():
                lines.append(f"not applicable: {n} video(s) have no frames or faces (audio only) for {', '.join(names)}")
        if self.failures:
            lines.append(f"{len(self.failures)} failure(s) (retried on the next run):")
            for f in self.failures[:50]:
                lines.append(f"  {f.video_id} [{f.feature}] {f.stage}: {f.reason}")
            if len(self.failures) > 50:
                lines.append(f"  ... and {len(self.failures) - 50} more (see `affect store ls STORE DATASET FEATURE --failed`)")
        return "\n".join(lines)
