"""Dependencies between the extractors of a run: which feature sets each reads, in which order
they run, and which extractors share one pass over the videos.

A feature set an extractor reads (a transcript, the face boxes) is either written by another
extractor of the same run, which then runs first (or, when the reader's feeder can run it
itself while decoding, in the same pass: the face detector inside the faces feeder), or it
is already in the store. A dependency that is in the store but not asked for is rebuilt from
its stored config, so the run can fill in videos it lacks without changing its config hash
(unless the user gave it settings: then those, and the store's config check decides); one
that is nowhere is added with its default settings (or the recipe's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from affectstore.extract.base import Extractor, Input
from affectstore.extract.errors import ExtractionError, ExtractorError
from affectstore.extract.feeders import feeder_class
from affectstore.extract.feeders.base import Feeder
from affectstore.extract.registry import create_extractor

logger = logging.getLogger(__name__)

_INPUT_ORDER = {kind: i for i, kind in enumerate(Input)}


@dataclass
class Pass:
    """Extractors fed by one feeder in one sweep over the videos; ``hosted`` run inside the feeder."""

    input: Input
    feeder: type[Feeder]
    members: list[int] = field(default_factory=list)
    hosted: set[int] = field(default_factory=set)

    @property
    def label(self) -> str:
        return self.input.value


@dataclass
class Plan:
    extractors: list[Extractor[Any]]
    passes: list[Pass]
    #: feature -> config hash of dependencies read from the store without an extractor in the run.
    external: dict[str, str]
    #: extractor index -> the feature names it reads.
    reads: dict[int, dict[str, str]]
    #: extractor indices, producers before the extractors that read them.
    order: list[int]


def _store_provenance(store: Any, dataset: str, feature: str) -> dict[str, Any] | None:
    from affectstore.store import StoreError

    try:
        if feature not in store.features(dataset):
            return None
        return store.provenance(dataset, feature)
    except StoreError:
        return None


def _from_store(prov: dict[str, Any], feature: str, device: str | None) -> Extractor[Any] | None:
    """The extractor that wrote a stored feature set, with its stored config (None when it cannot be rebuilt).

    ``device`` and ``batch_size`` change no numbers: the stored ones belong to the machine that
    wrote them, so this run's device (or the default) is used."""
    try:
        config = {k: v for k, v in (prov.get("config") or {}).items() if k not in ("device", "batch_size")}
        if device is not None:
            config["device"] = device
        extractor = create_extractor(prov["extractor"], config)
    except (ExtractorError, KeyError, TypeError, ValueError):
        return None
    return extractor if feature in extractor.output_names else None


def resolve(
    requested: Sequence[Extractor[Any]],
    build: Callable[[str], Extractor[Any]],
    adapter: Any,
    options: Any,
    store: Any,
    dataset: str,
    device: str | None = None,
    configured: frozenset[str] = frozenset(),
) -> Plan:
    """Add missing dependencies, order the extractors, bind their dependency hashes and group them into passes.

    ``configured``: features the user gave settings for; such a dependency is built from those
    settings even when the store has it (so a changed setting meets the store's config check)."""
    extractors = list(requested)
    reads: dict[int, dict[str, str]] = {}
    external: dict[str, str] = {}
    stored_builds: dict[int, str] = {}
    i = 0
    while i < len(extractors):
        extractor = extractors[i]
        wanted = dict(extractor.dependencies())
        wanted.update(feeder_class(extractor.input).implied_dependencies(extractor, adapter, options))
        reads[i] = wanted
        for feature in wanted.values():
            if any(feature in e.output_names for e in extractors) or feature in external:
                continue
            prov = None if feature in configured else _store_provenance(store, dataset, feature)
            if prov is not None:
                rebuilt = _from_store(prov, feature, device)
                if rebuilt is not None and prov.get("depends_on", {}) == {} and rebuilt.config_hash == prov.get("config_hash"):
                    extractors.append(rebuilt)
                    stored_builds[len(extractors) - 1] = feature
                    logger.info("%s reads %s/%s from the store (same config; missing videos are filled in)", extractor.prefix, dataset, feature)
                else:
                    external[feature] = prov["config_hash"]
                continue
            try:
                extractors.append(build(feature))
            except ExtractorError as error:
                raise ExtractionError(
                    f"{extractor.prefix!r} reads feature set {feature!r}, which is not in {dataset!r} of the store and "
                    f"cannot be extracted here ({error}). Extract it first or name an available one."
                ) from None
            logger.info("%s reads %s: added it to the run", extractor.prefix, feature)
        i += 1

    producer = {name: k for k, e in enumerate(extractors) for name in e.output_names}
    # Levels: a producer runs a pass before its consumer, or in the consumer's pass when the
    # consumer's feeder hosts it.
    hosted_by: dict[int, Input] = {}
    for k, wanted in reads.items():
        for feature in wanted.values():
            p = producer.get(feature)
            if p is not None and feeder_class(extractors[k].input).hosts(extractors[p]):
                hosted_by[p] = extractors[k].input
    level: dict[int, int] = {}

    def level_of(k: int, trail: tuple[int, ...] = ()) -> int:
        if k in trail:
            cycle = " -> ".join(extractors[j].prefix for j in (*trail, k))
            raise ExtractionError(f"Extractors depend on each other in a cycle: {cycle}.")
        if k not in level:
            deps = [producer[f] for f in reads[k].values() if f in producer]
            level[k] = max(
                (level_of(p, (*trail, k)) + (0 if hosted_by.get(p) == extractors[k].input else 1) for p in deps),
                default=0,
            )
        return level[k]

    for k in range(len(extractors)):
        level_of(k)
    order: list[int] = []  # producers before their readers (depth-first; cycles were refused above)

    def visit(k: int) -> None:
        if k not in order:
            for f in reads[k].values():
                if f in producer:
                    visit(producer[f])
            order.append(k)

    for k in range(len(extractors)):
        visit(k)
    for k in order:
        hashes = {}
        for feature in set(reads[k].values()):
            hashes[feature] = extractors[producer[feature]].config_hash if feature in producer else external[feature]
        extractors[k].bind_dependencies(hashes)

    groups: dict[tuple[int, Input, Any], Pass] = {}
    for k in sorted(range(len(extractors)), key=lambda j: (level[j], j)):
        kind = hosted_by.get(k, extractors[k].input)
        cls = feeder_class(kind)
        key = (level[k], kind, cls.group_key(extractors[k]))
        group = groups.setdefault(key, Pass(kind, cls))
        group.members.append(k)
        if k in hosted_by:
            group.hosted.add(k)
    passes = [groups[key] for key in sorted(groups, key=lambda g: (g[0], _INPUT_ORDER[g[1]], str(g[2])))]
    return Plan(extractors, passes, external, reads, order)
