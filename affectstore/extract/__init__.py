"""Extractors: the contract (base), the registry and one module per model family."""
from affectstore.extract import wav2vec2  # noqa: F401
