"""Coreset baselines, saved like condensed sets. For now: random real images (paper Table 1)."""
from __future__ import annotations

from typing import Any

import jax
import numpy as np

from dcjax import data as data_lib
from dcjax.checkpoint import SyntheticSet


def random_real(dataset: data_lib.Dataset, ipc: int, key: jax.Array) -> SyntheticSet:
    """`ipc` real training images per class drawn without replacement, class-major."""
    data_lib.check_batch_size(dataset, ipc, field="ipc")
    images = np.asarray(data_lib.sample_real(key, dataset, ipc))
    metadata: dict[str, Any] = {
        "dataset": dataset.name, "num_classes": dataset.num_classes, "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape), "mean": list(dataset.mean), "std": list(dataset.std),
        "ipc": ipc, "method": "random_real", "label_order": "class-major"}
    return SyntheticSet(images.reshape((-1,) + images.shape[2:]),
                        np.repeat(np.arange(dataset.num_classes, dtype=np.int32), ipc), metadata)
