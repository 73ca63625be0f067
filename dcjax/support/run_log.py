"""What a run leaves in its workdir and shows while it runs; this module only writes.

Progress and messages go to stderr, records to `metrics.jsonl` (+ TensorBoard), pictures to
`images/`, the run's summary to `summary.json`. With several processes, process 0 alone prints
and writes (the others compute the same things and stay silent).
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import jax
import numpy as np

from dcjax.data import denormalise
from dcjax.support.files import write_json
from dcjax.support.metrics import METRICS_FILE, PLOT_FILE, MetricsWriter, plot_history
from dcjax.support.pictures import save_grid
from dcjax.support.progress import EvaluationProgress, progress

SUMMARY_FILE = "summary.json"


class RunLog:
    """Writes a run's outputs into its workdir (process 0 only)."""

    def __init__(self, workdir: str, class_names: list[str], mean: Any, std: Any, log_every: int = 10):
        self.workdir, self.class_names, self.log_every = workdir, list(class_names), log_every
        self.mean, self.std = mean, std
        self.writes = jax.process_index() == 0
        self.t0 = time.time()
        self.metrics = MetricsWriter(workdir) if self.writes else None
        self._progress = None

    def message(self, text: str) -> None:
        if self.writes:
            print(text, file=sys.stderr, flush=True)

    def start_iterations(self, start: int, total: int) -> None:
        """Show progress over the outer iterations, `start` of `total` already done."""
        self._progress = progress("condensing", "iteration", start, total, self.log_every, self.writes)

    def iteration(self, iteration: int, matching_loss: float) -> None:
        self.record({"iteration": iteration, "matching_loss": matching_loss,
                     "elapsed_s": round(time.time() - self.t0, 3)})
        self._progress.update(iteration, f"loss {matching_loss:.4f}")

    def end_iterations(self) -> None:
        if self._progress is not None:
            self._progress.close()

    def record(self, values: dict[str, Any]) -> None:
        """One metrics record (an `iteration` and scalars)."""
        if self.writes:
            self.metrics.write(values)

    def evaluation_progress(self, label: str, num_networks: int, epochs_per_network: int) -> EvaluationProgress:
        return EvaluationProgress(label, num_networks, epochs_per_network, self.writes)

    def accuracy(self, iteration: int, result: dict[str, Any], label: str) -> None:
        """Record an evaluation's accuracy at `iteration` and print it."""
        self.record({"iteration": iteration, "eval_accuracy_mean": result["mean"],
                     "eval_accuracy_std": result["std"]})
        self.message(f"{label}: test accuracy {100 * result['mean']:.2f} +- {100 * result['std']:.2f}% "
                     f"over {result['num_models']} networks")

    def grid(self, name: str, images: np.ndarray) -> str | None:
        """`images/<name>.png`: the class-major normalised images (C, ipc, H, W, ch) in pixel units, a
        row per class."""
        if not self.writes:
            return None
        images = np.asarray(images)
        pixels = np.asarray(denormalise(images.reshape((-1,) + images.shape[2:]), self.mean, self.std))
        return save_grid(os.path.join(self.workdir, "images", f"{name}.png"), pixels, images.shape[0],
                         class_names=self.class_names)

    def summary(self, summary: dict[str, Any]) -> None:
        """`summary.json`, updated with `summary`'s fields (condensation and evaluation each add theirs)."""
        if not self.writes:
            return
        path = os.path.join(self.workdir, SUMMARY_FILE)
        write_json(path, {**read_summary(self.workdir), **summary})

    def close(self) -> None:
        """Flush the metrics and draw their plot."""
        self.end_iterations()
        if self.writes:
            self.metrics.close()
            plot_history(os.path.join(self.workdir, METRICS_FILE), os.path.join(self.workdir, PLOT_FILE))


def read_summary(workdir: str) -> dict[str, Any]:
    """The run's `summary.json`, or {} before there is one."""
    path = os.path.join(workdir, SUMMARY_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
