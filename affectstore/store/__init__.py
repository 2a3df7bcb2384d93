"""The Zarr v3 feature store: per-video arrays with provenance, completion marks and failure records."""

from affectstore.store.errors import (
    ArrayShapeError,
    ConfigMismatchError,
    DamagedStoreError,
    NotAStoreError,
    StoreError,
    UnknownDatasetError,
    UnknownFeatureError,
    UnknownVideoError,
)
from affectstore.store.keys import decode_key, encode_id
from affectstore.store.provenance import config_hash, library_versions
from affectstore.store.records import Failure, FeatureSetInfo, FeatureTable, TextSegments, VideoArrays
from affectstore.store.store import FeatureStore

__all__ = [
    "ArrayShapeError", "ConfigMismatchError", "DamagedStoreError", "Failure", "FeatureSetInfo", "FeatureStore", "FeatureTable",
    "NotAStoreError", "StoreError", "TextSegments", "UnknownDatasetError", "UnknownFeatureError",
    "UnknownVideoError", "VideoArrays", "config_hash", "decode_key", "encode_id", "library_versions",
]
