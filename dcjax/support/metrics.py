"""A run's metrics: JSON lines (`metrics.jsonl`), TensorBoard scalars (`tensorboard/`) and a plot.

Each record is one dict with an `iteration` and scalar fields (`matching_loss`, `elapsed_s`,
`eval_accuracy_mean`, ...). JSON lines are the durable record (appended, one line per write, easy to
read from any language); TensorBoard gets the same scalars through tensorboardX, which needs no
TensorFlow. A resumed run re-runs the iterations after its last checkpoint, so a file can hold an
iteration twice: readers keep the last record per (iteration, field), as `history` does.
"""
from __future__ import annotations

import json
import os
from typing import Any

from dcjax.support.files import atomic_path

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
PLOT_FILE = "metrics.png"


class MetricsWriter:
    """Appends records to `<workdir>/metrics.jsonl` and mirrors their scalars to TensorBoard."""

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, METRICS_FILE)
        self._tensorboard = None   # created on the first record: a run refused early writes nothing

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self._tensorboard is None:
            from tensorboardX import SummaryWriter
            self._tensorboard = SummaryWriter(os.path.join(self.workdir, TENSORBOARD_DIR))
        step = int(record["iteration"])
        for name, value in record.items():
            if name != "iteration" and isinstance(value, (int, float)):
                self._tensorboard.add_scalar(name, value, step)
        self._tensorboard.flush()   # once per outer iteration: cheap, and nothing waits in memory

    def close(self) -> None:
        if self._tensorboard is not None:
            self._tensorboard.close()
            self._tensorboard = None


def history(path: str) -> dict[str, dict[int, float]]:
    """{field: {iteration: value}} from a metrics.jsonl file (last record wins; torn last line skipped)."""
    series: dict[str, dict[int, float]] = {}
    if not os.path.exists(path):
        return series
    with open(path) as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue   # a line cut short by a kill
            for name, value in record.items():
                if name != "iteration" and isinstance(value, (int, float)):
                    series.setdefault(name, {})[int(record["iteration"])] = float(value)
    return series


def plot_history(metrics_path: str, png_path: str) -> str | None:
    """Matching loss (and test accuracy, if evaluated) over iterations as a PNG; None if nothing to plot."""
    series = history(metrics_path)
    if "matching_loss" not in series:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    accuracy = series.get("eval_accuracy_mean")
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(10 if accuracy else 5, 3.5), squeeze=False)
    loss = sorted(series["matching_loss"].items())
    axes[0, 0].plot([i for i, _ in loss], [v for _, v in loss])
    axes[0, 0].set(xlabel="outer iteration", ylabel="mean matching loss", title="gradient matching loss")
    if accuracy:
        points = sorted(accuracy.items())
        std = series.get("eval_accuracy_std", {})
        axes[0, 1].errorbar([i for i, _ in points], [100 * v for _, v in points],
                            yerr=[100 * std.get(i, 0.0) for i, _ in points], marker="o", capsize=3)
        axes[0, 1].set(xlabel="outer iteration", ylabel="test accuracy %", title="evaluation")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return png_path
