"""What a workdir holds, in a few lines: `bin/show.py <workdir>` prints this and writes the grid."""
from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from dcjax.support.checkpoints import CHECKPOINT_DIR
from dcjax.synthetic_set import SYNTHETIC_DIR, load_synthetic
from dcjax.errors import CheckpointError
from dcjax.support.metrics import METRICS_FILE, PLOT_FILE, history, plot_history
from dcjax.support.pictures import save_grid


def describe_run(workdir: str, grid_path: str | None = None) -> list[str]:
    """Lines describing the run in `workdir`; writes the set's PNG grid (and the metrics plot) if it can."""
    if not os.path.isdir(workdir):
        raise CheckpointError(f"{workdir} does not exist; give the --workdir of a dcjax run")
    lines = [f"run: {os.path.abspath(workdir)}"]
    series = history(os.path.join(workdir, METRICS_FILE))
    losses = series.get("matching_loss", {})
    if losses:
        last = max(losses)
        lines.append(f"iterations logged: {len(losses)}, last {last} (matching loss {losses[last]:.4f})")
    checkpoints = os.path.join(workdir, CHECKPOINT_DIR)
    steps = sorted(int(d) for d in os.listdir(checkpoints) if d.isdigit()) if os.path.isdir(checkpoints) else []
    lines.append(f"checkpoints: {', '.join(map(str, steps)) if steps else 'none'}")
    summary_path = os.path.join(workdir, "summary.json")
    summary: dict[str, Any] = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    if "evaluation" in summary:
        e = summary["evaluation"]
        lines.append(f"test accuracy: {100 * e['mean']:.2f} +- {100 * e['std']:.2f}% over {e['num_models']} "
                     f"{e['model'].get('family', '')} networks, {e['epochs']} epochs")
    if not os.path.isdir(os.path.join(workdir, SYNTHETIC_DIR)):
        lines.append("synthetic set: not written yet (the run has not finished)")
        return lines
    synset = load_synthetic(workdir)
    meta = synset.metadata
    class_names = meta.get("class_names") or None
    num_classes = len(class_names) if class_names else int(np.max(synset.labels)) + 1
    lines.append(f"synthetic set: {len(synset.images)} images {tuple(synset.images.shape[1:])}, "
                 f"{meta.get('dataset')} ipc {meta.get('ipc')}, iteration {meta.get('iteration')}")
    grid_path = grid_path or os.path.join(workdir, "images", "final.png")
    lines.append(f"grid: {save_grid(grid_path, synset.denormalised(), num_classes, class_names=class_names)}")
    plot = plot_history(os.path.join(workdir, METRICS_FILE), os.path.join(workdir, PLOT_FILE))
    if plot:
        lines.append(f"plot: {plot}")
    return lines
