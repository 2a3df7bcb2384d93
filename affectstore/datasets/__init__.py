"""Dataset adapters: a dataset root -> a manifest of `VideoEntry` plus labels, transcripts
and face crops. ``get_adapter(name, root, **options)`` with name in emi, bah, affwild2, clips.
"""

from affectstore.datasets import affwild2, bah, clips, emi  # noqa: F401  (register the adapters)
from affectstore.datasets.affwild2 import (
    AFFECTNET_TO_EXPR,
    EXPR_CLASSES,
    AffWild2Adapter,
    base_video_id,
)
from affectstore.datasets.bah import BahAdapter
from affectstore.datasets.base import (
    CLASSIFICATION,
    REGRESSION,
    AnnotationError,
    DatasetAdapter,
    DatasetError,
    FaceCrops,
    FrameLabels,
    MissingFileError,
    NotProvidedError,
    Problem,
    Segment,
    Target,
    Task,
    VideoEntry,
    VideoLabels,
    available_adapters,
    get_adapter,
    register_adapter,
)
from affectstore.datasets.clips import ClipsAdapter
from affectstore.datasets.emi import EMI_TARGETS, EmiAdapter

__all__ = [
    "AFFECTNET_TO_EXPR",
    "CLASSIFICATION",
    "EMI_TARGETS",
    "EXPR_CLASSES",
    "REGRESSION",
    "AffWild2Adapter",
    "AnnotationError",
    "BahAdapter",
    "ClipsAdapter",
    "DatasetAdapter",
    "DatasetError",
    "EmiAdapter",
    "FaceCrops",
    "FrameLabels",
    "MissingFileError",
    "NotProvidedError",
    "Problem",
    "Segment",
    "Target",
    "Task",
    "VideoEntry",
    "VideoLabels",
    "available_adapters",
    "base_video_id",
    "get_adapter",
    "register_adapter",
]
