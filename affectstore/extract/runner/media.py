"""What a run records about its input media, and the check that one store group holds one dataset.

Every feature set a run creates records the dataset it was made from (adapter and root
folder). A second dataset read by the same adapter (two ``clips`` folders) would otherwise
land in the same group and mix its videos with the first one's; the run refuses that and
names ``--dataset-name``. The folder's name is compared, not its full path, so a store
extracted further on another machine (another mount point) resumes.
"""

from __future__ import annotations

from typing import Any

from affectstore.extract.errors import ExtractionError


def dataset_provenance(adapter: Any) -> dict[str, Any]:
    """The dataset a feature set is made from: adapter name, root folder (and its name)."""
    root = getattr(adapter, "root", None)
    return {"adapter": getattr(adapter, "name", type(adapter).__name__), "root": str(root) if root else None,
            "root_name": root.name if root is not None else None}


def check_same_dataset(store: Any, group: str, adapter: Any, features: list[str]) -> None:
    """Refuse to extract ``adapter``'s dataset into store group ``group`` when it holds another dataset's features."""
    ours = dataset_provenance(adapter)
    for feature in features:
        theirs = store.provenance(group, feature).get("dataset")
        if not isinstance(theirs, dict):
            continue  # made before datasets were recorded
        if (theirs.get("adapter"), theirs.get("root_name")) != (ours["adapter"], ours["root_name"]):
            raise ExtractionError(
                f"Store group {group!r} of {store.location} holds {feature} of dataset {theirs.get('adapter')} at "
                f"{theirs.get('root')}; this run reads {ours['adapter']} at {ours['root']}. Pass --dataset-name NAME "
                f"(e.g. --dataset-name {ours['root_name'] or group + '2'}) to keep the two datasets apart."
            )
