"""The finished synthetic set: what it holds, and its storage (Orbax arrays + JSON metadata).

`synthetic/` in a workdir holds images (normalised, class-major), labels and a JSON metadata record
that says how to use them (dataset, mean/std, class names, ipc, model, iteration, the evaluation
recipe, config). Arrays are stored by Orbax (Zarr/TensorStore), metadata as JSON, so loading a set
never executes code from the file (no pickle). `.npz` and PNG-folder exports serve other tools.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any

import numpy as np
import orbax.checkpoint as ocp

from dcjax.errors import CheckpointError
from dcjax.support.checkpoints import damaged_checkpoint
from dcjax.support.files import atomic_path

FORMAT_NAME = "dcjax-synthetic-set"
FORMAT_VERSION = 1
SYNTHETIC_DIR = "synthetic"


@dataclasses.dataclass
class SyntheticSet:
    """A condensed (or baseline) training set and what is needed to use it.

    `images` are (N, H, W, C) float32 in the normalised space the set was learnt in; de-normalise
    with `images * std + mean`. `labels` are (N,) int32, class-major (ipc images of class 0, ...).
    """
    images: np.ndarray
    labels: np.ndarray
    metadata: dict[str, Any]

    @property
    def mean(self) -> np.ndarray:
        return np.asarray(self.metadata["mean"], np.float32)

    @property
    def std(self) -> np.ndarray:
        return np.asarray(self.metadata["std"], np.float32)

    def sha256(self) -> str:
        """A fingerprint of the images (float32 bytes): equal sets, equal fingerprints."""
        return hashlib.sha256(np.ascontiguousarray(self.images, np.float32).tobytes()).hexdigest()

    def denormalised(self) -> np.ndarray:
        """Images in [0, 1] pixel units."""
        return np.clip(self.images * self.std + self.mean, 0.0, 1.0)


def set_metadata(dataset: Any, ipc: int, **specifics: Any) -> dict[str, Any]:
    """The metadata every saved set carries: what the images are and how to use them without
    dcjax's code (dataset, classes, shape, normalisation, ipc, label order), plus `specifics` from
    whoever made the set (condensation: model, iteration, evaluation recipe, config; a coreset
    baseline: method and the selected training indices)."""
    return {
        "dataset": dataset.name, "num_classes": dataset.num_classes, "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape), "mean": list(map(float, dataset.mean)),
        "std": list(map(float, dataset.std)),
        "normalisation": "images are (pixel/255 - mean) / std per channel; pixel = image * std + mean",
        "ipc": int(ipc), "label_order": "class-major: ipc images of class 0, then class 1, ...",
        **specifics,
    }


def save_synthetic(directory: str, synset: SyntheticSet) -> str:
    """Write `synset` to `directory` atomically (replacing an older set there); returns the path."""
    directory = os.path.abspath(directory)
    metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **synset.metadata}
    arrays = {"images": np.asarray(synset.images, np.float32), "labels": np.asarray(synset.labels, np.int32)}
    with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
        checkpointer.save(directory, args=ocp.args.Composite(
            arrays=ocp.args.StandardSave(arrays), metadata=ocp.args.JsonSave(metadata)), force=True)
    return directory


def _load_npz(path: str) -> SyntheticSet:
    with np.load(path, allow_pickle=False) as data:
        if not {"images", "labels", "metadata"} <= set(data.files):
            raise CheckpointError(f"{path} is not a dcjax synthetic set export (needs images, labels, metadata)")
        metadata = json.loads(str(data["metadata"]))
        return SyntheticSet(data["images"], data["labels"], metadata)


def load_synthetic(path: str) -> SyntheticSet:
    """Load a synthetic set from a workdir, a `synthetic/` directory, or an exported `.npz`."""
    if path.endswith(".npz") and os.path.isfile(path):
        return _load_npz(path)
    candidate = os.path.join(path, SYNTHETIC_DIR)
    directory = os.path.abspath(candidate if os.path.isdir(candidate) else path)
    if not os.path.isdir(directory):
        raise CheckpointError(f"no synthetic set at {path}: expected a run's workdir, its '{SYNTHETIC_DIR}/' "
                              f"directory or an exported .npz; has the run finished?")
    if not os.path.isdir(os.path.join(directory, "metadata")) or not os.path.isdir(os.path.join(directory, "arrays")):
        raise CheckpointError(f"{directory} is not a dcjax synthetic set (no 'arrays' and 'metadata' inside)")
    try:
        with ocp.Checkpointer(ocp.CompositeCheckpointHandler()) as checkpointer:
            restored = checkpointer.restore(directory, args=ocp.args.Composite(
                arrays=ocp.args.StandardRestore(), metadata=ocp.args.JsonRestore()))
    except (FileNotFoundError, ValueError, KeyError, OSError, TypeError) as err:
        raise damaged_checkpoint(directory, err) from err
    metadata = dict(restored["metadata"] or {})
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{directory} is not a dcjax synthetic set (metadata format {metadata.get('format')!r})")
    arrays = restored["arrays"]
    return SyntheticSet(np.asarray(arrays["images"]), np.asarray(arrays["labels"]), metadata)


def export_pngs(synset: SyntheticSet, directory: str) -> str:
    """Write the set as PNG files, one folder per class (`<NNN>_<class name>/`), for image tools and
    torchvision's ImageFolder; returns the directory."""
    from dcjax.support.pictures import export_png_folder
    names = synset.metadata.get("class_names") or [str(c) for c in range(int(np.max(synset.labels)) + 1)]
    return export_png_folder(synset.denormalised(), synset.labels, list(names), directory)


def export_npz(synset: SyntheticSet, path: str) -> str:
    """Write the set as a plain `.npz` (images, labels, metadata as a JSON string) for NumPy/PyTorch users."""
    with atomic_path(path) as tmp:
        np.savez(tmp, images=synset.images, labels=synset.labels,
                 metadata=np.asarray(json.dumps({"format": FORMAT_NAME, **synset.metadata})))
    return path
