"""affectstore: extract frozen-encoder features once into a Zarr store, train cheap models many times."""

__version__ = "0.1.0"
