"""Entry points: :func:`run_extraction` (Python) and :func:`extract_command` (what ``affect extract`` does)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from affectstore.extract.base import Extractor
from affectstore.extract.errors import ExtractionError
from affectstore.extract.registry import available_extractors
from affectstore.extract.runner.options import (
    RUN_OPTION_FIELDS,
    RunOptions,
    build_extractor,
    build_extractors,
    check_unique_outputs,
    parse_settings,
    parse_shard,
)
from affectstore.extract.runner.plan import resolve
from affectstore.extract.runner.scheduler import Runner
from affectstore.extract.runner.summary import RunSummary


def run_extraction(
    dataset: str,
    root: str | Path,
    features: Sequence[str | Extractor[Any]],
    store: str | Path | Any,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
    store_dataset: str | None = None,
    split: str | None = None,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
    shard: str | tuple[int, int] | bool | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    options: RunOptions | None = None,
    set_features: Sequence[str] = (),
    explicit: Sequence[str] = (),
) -> RunSummary:
    """Extract ``features`` for the videos of dataset ``dataset`` at ``root`` into ``store``.

    ``features``: extractor names, recipe prefixes (defined in ``settings``) or extractor
    instances; ``settings``: per-feature config tables. Feature sets the requested extractors
    read (a transcript, face boxes) are added when the store lacks them. ``store_dataset``:
    the dataset's group in the store (default: ``dataset``). ``shard``: ``"I/N"``, ``(I, N)``,
    False for none, or None to read the SLURM array variables. ``set_features``: features the
    user gave settings for on the command line; one the run neither asks for nor reads is an error.
    ``explicit``: which of ``device``/``dtype`` the user typed (see :func:`build_extractors`).
    """
    from affectstore.datasets import get_adapter
    from affectstore.store import FeatureStore

    if not features:
        raise ExtractionError(f"No features requested. Known extractors: {', '.join(available_extractors())}.")
    options = options or RunOptions()
    extractors = build_extractors(features, settings, device=device, dtype=dtype, batch_size=batch_size, explicit=explicit)
    adapter = get_adapter(dataset, root, **dict(dataset_options or {}))
    entries = adapter.manifest(split)
    if videos:
        entries = [adapter.entry(v) for v in dict.fromkeys(videos)]
        if split is not None:
            outside = [e.id for e in entries if e.split != split]
            if outside:
                raise ExtractionError(f"video(s) {', '.join(map(repr, outside))} are not in split {split!r}.")
    the_store = store if hasattr(store, "write_video") else FeatureStore.open(store, mode="a")
    group = store_dataset or dataset

    def build(feature: str) -> Extractor[Any]:
        return build_extractor(feature, settings, device=device, dtype=dtype, batch_size=batch_size)

    configured = frozenset(k for k, v in (settings or {}).items() if v)
    plan = resolve(extractors, build, adapter, options, the_store, group, device=device, configured=configured)
    check_unique_outputs(plan.extractors)
    used = {e.prefix for e in plan.extractors}
    stray = [f for f in set_features if f not in used]
    if stray:
        requested = ", ".join(e.prefix if isinstance(e, Extractor) else str(e) for e in features)
        raise ExtractionError(
            f"--set names feature {stray[0]!r}, which is not requested. Requested: {requested}."
            + (f" Also read by them: {', '.join(sorted(used - set(map(str, features))))}." if used - set(map(str, features)) else "")
        )
    if shard is False:
        parsed = None
    elif isinstance(shard, str | tuple) or shard is None:
        parsed = parse_shard(shard)
    else:
        raise ExtractionError(f"shard must be 'I/N', (I, N), None or False. Got {shard!r} instead.")
    runner = Runner(the_store, group, entries, plan, adapter, options, limit=limit, shard=parsed,
                    dataset_options=dict(dataset_options or {}))
    return runner.run()


def extract_command(
    dataset: str,
    root: str | None = None,
    *,
    features: str | Sequence[str] | None = None,
    store: str | None = None,
    recipe: str | Path | None = None,
    dataset_options: Iterable[str] = (),
    settings: Iterable[str] = (),
    split: str | None = None,
    videos: Sequence[str] | None = None,
    limit: int | None = None,
    shard: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    progress: bool = True,
    pack: bool | None = None,
    jobs: int | None = None,
    dataset_name: str | None = None,
    hash_media: bool | None = None,
    dask: str | None = None,
    workers: int | None = None,
    environ: Mapping[str, str] = os.environ,
) -> RunSummary:
    """What ``affect extract`` does: merge recipe, environment and command line, then :func:`run_extraction`.

    Precedence: command line > DATA_ROOT (root only) > recipe. ``features`` is a comma list;
    default: every extractor of the recipe. ``settings``: ``FEATURE.SETTING=VALUE`` pairs;
    ``dataset_options``: adapter ``key=value`` pairs. ``dataset_name``: the dataset's group in
    the store (default: the recipe's name, else the adapter's), so that two datasets read by
    one adapter (two ``clips`` folders) live side by side in one store.
    """
    from affectstore.datasets.check import parse_options
    from affectstore.extract.recipe import dataset_root, load_recipe

    plan = load_recipe(recipe) if recipe is not None else None
    if plan is not None and plan.dataset and plan.dataset != dataset:
        raise ExtractionError(f"Recipe {plan.path} is for dataset {plan.dataset!r}, not {dataset!r}. Pass DATASET {plan.dataset}.")
    root = dataset_root(root, plan, environ)
    store = store or (plan.store if plan else None)
    if not store:
        raise ExtractionError("No store given: pass --store PATH (or set `store = ...` in the recipe).")
    if isinstance(features, str):
        names = [f.strip() for f in features.split(",") if f.strip()]
    else:
        names = list(features or [])
    if not names:
        names = plan.features if plan else []
    if not names:
        raise ExtractionError(
            f"No features given: pass --features a,b,c. Known extractors: {', '.join(available_extractors())}."
        )
    tables: dict[str, dict[str, Any]] = {}
    if plan is not None:
        for spec in plan.extractors:
            tables[spec.feature] = {"extractor": spec.extractor, **spec.settings}
    command_line = parse_settings(settings)
    for feature, table in command_line.items():
        tables.setdefault(feature, {}).update(table)
    run = dict(plan.run) if plan else {}
    known = {k: run[k] for k in RUN_OPTION_FIELDS if k in run}
    if pack is not None:
        known["pack"] = pack
    if jobs is not None:
        known["jobs"] = jobs
    if hash_media is not None:
        known["hash_media"] = hash_media
    if dask is not None:
        known["dask"] = dask
    if workers is not None:
        known["workers"] = workers
    try:
        options = RunOptions(**known, progress=progress)
    except ValueError as error:
        raise ExtractionError(f"Recipe {plan.path if plan else ''} [run]: {error}") from error
    opts = dict(plan.dataset_options) if plan else {}
    opts.update(parse_options(dataset_options))
    return run_extraction(
        dataset,
        root,
        names,
        store,
        settings=tables,
        dataset_options=opts,
        store_dataset=dataset_name or (plan.name if plan else None),
        split=split or (plan.split if plan else None),
        videos=videos,
        limit=limit if limit is not None else run.get("limit"),
        shard=parse_shard(shard, environ) or False,
        device=device if device is not None else run.get("device"),
        dtype=dtype if dtype is not None else run.get("dtype"),
        batch_size=batch_size if batch_size is not None else run.get("batch_size"),
        options=options,
        set_features=list(command_line),
        explicit=[k for k, v in (("device", device), ("dtype", dtype)) if v is not None],
    )
