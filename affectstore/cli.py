"""The `affect` command line: thin typer commands over plain functions."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="affectstore: extract affect features once into a Zarr store, train cheap models on them.", no_args_is_help=True)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")


# --- affect data: dataset roots (issue 3) ---------------------------------------------
data_app = typer.Typer(help="Inspect dataset roots: manifests, labels, problems.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    dataset: str = typer.Argument(..., help="Dataset adapter: emi, bah, affwild2 or clips."),
    root: str = typer.Argument(..., help="The dataset root folder."),
    option: list[str] = typer.Option([], "--option", "-o", help="Adapter option key=value, repeatable (e.g. -o task=va, -o targets=emotion)."),
    probe: bool = typer.Option(False, "--probe", help="Also open every media file's header."),
) -> None:
    """Print counts per split, label statistics and every problem (file:line). Exit 1 if problems."""
    from affectstore.datasets.base import DatasetError
    from affectstore.datasets.check import check_dataset, parse_options

    try:
        report = check_dataset(dataset, root, probe_media=probe, **parse_options(option))
    except (DatasetError, ValueError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(report.text())
    raise typer.Exit(0 if report.ok else 1)
