"""The `affect` command line: thin typer commands over plain functions."""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="affectstore: extract affect features once into a Zarr store, train cheap models on them.", no_args_is_help=True)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
