"""What a run shows and leaves behind: progress, metrics.jsonl, PNG grids, evaluation, summary.json."""
from __future__ import annotations

import hashlib
import os
import sys
import time
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from dcjax import data as data_lib
from dcjax.augment import default_strategy
from dcjax.baselines import random_real
from dcjax.synthetic_set import SyntheticSet
from dcjax.configuration import root_keys
from dcjax.evaluate import EvalRecipe, evaluate
from dcjax.support.files import write_json
from dcjax.support.metrics import METRICS_FILE, PLOT_FILE, MetricsWriter, plot_history
from dcjax.nets import get_model, instance_norm_twin
from dcjax.support.pictures import save_grid


def eval_augmentation(config: Any) -> str:
    """config.eval.augmentation, 'auto' resolved as the reference's get_daparam (`default_strategy`).

    Without config.eval.model the evaluation network is the condensing one with batch norm swapped
    for instance norm (`eval_model`), never ConvNetBN, so only the dataset rule can apply. The
    reference also trains 1000 epochs when augmenting; config.eval.epochs is used as set.
    """
    strategy = config.eval.get("augmentation", "none")
    if strategy == "auto":
        return default_strategy(config.dataset, config.eval.get("model"))
    return strategy


def eval_recipe(config: Any) -> EvalRecipe:
    e = config.eval
    return EvalRecipe(epochs=e.epochs, batch_size=e.batch_size, lr=e.lr, momentum=e.momentum,
                      weight_decay=e.weight_decay, test_batch_size=e.test_batch_size, parallel=e.parallel,
                      augmentation=eval_augmentation(config))


def eval_model(config: Any, condense_module: nn.Module, num_classes: int) -> nn.Module:
    """The evaluation network: config.eval.model, else the condensing one with BN -> instance norm."""
    if config.eval.get("model"):
        return get_model(config.eval.model, num_classes)
    return instance_norm_twin(condense_module)


def module_description(module: nn.Module) -> dict[str, Any]:
    fields = {k: getattr(module, k) for k in module.__dataclass_fields__ if k not in ("parent", "name")}
    return {"family": type(module).__name__, **fields}


def set_metadata(config: Any, dataset: data_lib.Dataset, module: nn.Module, iteration: int) -> dict[str, Any]:
    """Everything needed to use a saved set without reading dcjax's code."""
    return {
        "dataset": dataset.name, "num_classes": dataset.num_classes, "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape), "mean": list(dataset.mean), "std": list(dataset.std),
        "normalisation": "images are (pixel/255 - mean) / std per channel; pixel = image * std + mean",
        "ipc": int(config.ipc), "label_order": "class-major: ipc images of class 0, then class 1, ...",
        "model": config.model, "model_fields": module_description(module), "iteration": iteration,
        "eval_recipe": dict(eval_recipe(config).__dict__), "config": config.to_dict(),
    }


def random_real_evaluation(log: "RunLog", module: nn.Module) -> dict[str, Any]:
    """Evaluate ipc random real images per class exactly as the synthetic set is evaluated.

    The images are drawn with the run's initialisation key, so with `init='real'` this is the
    evaluation of the set before condensation.
    """
    baseline = random_real(log.dataset, int(log.config.ipc), root_keys(log.config.seed)["init"])
    return log.evaluate_set(baseline.images, baseline.labels, module)


class _LinePrinter:
    """Stand-in for a progress bar when output is not a terminal: a log line every `every` iterations."""

    def __init__(self, start: int, total: int, every: int):
        self.n, self.total, self.every, self.t0, self.start = start, total, max(every, 1), time.time(), start

    def update(self, iteration: int, loss: float) -> None:
        self.n = iteration
        if iteration % self.every == 0 or iteration == self.total:
            done = iteration - self.start
            eta = (time.time() - self.t0) / max(done, 1) * (self.total - iteration)
            print(f"iteration {iteration}/{self.total} loss {loss:.4f} eta {eta:.0f}s", flush=True)

    def close(self) -> None:
        pass


class _Silent:
    """Progress of a process that does not print (not process 0)."""

    def update(self, iteration: int, loss: float) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    def __init__(self, start: int, total: int):
        self._bar = tqdm(total=total, initial=start, desc="condensing", unit="it", dynamic_ncols=True)

    def update(self, iteration: int, loss: float) -> None:
        self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self._bar.update(iteration - self._bar.n)

    def close(self) -> None:
        self._bar.close()


class RunLog:
    """Writes a run's outputs into its workdir.

    Evaluations run on every process (their networks are sharded over `mesh`, all devices of all
    hosts); only process 0 prints and writes files.
    """

    def __init__(self, workdir: str, config: Any, dataset: data_lib.Dataset, mesh: Mesh | None = None):
        self.workdir, self.config, self.dataset, self.mesh = workdir, config, dataset, mesh
        self.writes = jax.process_index() == 0
        os.makedirs(workdir, exist_ok=True)
        self.t0 = time.time()
        self.metrics = MetricsWriter(workdir) if self.writes else None
        self.metrics_path = os.path.join(workdir, METRICS_FILE)

    def message(self, text: str) -> None:
        if self.writes:
            print(text, file=sys.stderr, flush=True)

    def progress(self, start: int, total: int):
        if not self.writes:
            return _Silent()
        if sys.stderr.isatty():
            return _Bar(start, total)
        return _LinePrinter(start, total, self.config.log_every)

    def _append(self, record: dict[str, Any]) -> None:
        if self.writes:
            self.metrics.write(record)

    def iteration(self, iteration: int, loss: float, progress) -> None:
        self._append({"iteration": iteration, "matching_loss": loss, "elapsed_s": round(time.time() - self.t0, 3)})
        progress.update(iteration, loss)

    def evaluate_set(self, images: np.ndarray, labels: np.ndarray, module: nn.Module) -> dict[str, Any]:
        model = eval_model(self.config, module, self.dataset.num_classes)
        t0 = time.time()
        accs = evaluate(model, images, labels, self.dataset.x_test, self.dataset.y_test,
                        root_keys(self.config.seed)["eval"], self.config.eval.num_models, eval_recipe(self.config),
                        mesh=self.mesh)
        return {"model": module_description(model), "accuracies": [float(a) for a in accs],
                "mean": float(np.mean(accs)), "std": float(np.std(accs)), "num_models": len(accs),
                "epochs": self.config.eval.epochs, "seconds": round(time.time() - t0, 2)}

    def evaluation_point(self, iteration: int, images: jax.Array, module: nn.Module) -> None:
        images = np.asarray(images)
        num_classes, ipc = images.shape[:2]
        if self.writes:
            save_grid(os.path.join(self.workdir, "images", f"iter_{iteration:06d}.png"),
                      data_lib.denormalise(images.reshape((-1,) + images.shape[2:]), self.dataset.mean,
                                           self.dataset.std), num_classes)
        if self.config.eval.num_models:
            labels = np.repeat(np.arange(num_classes), ipc)
            result = self.evaluate_set(images.reshape((-1,) + images.shape[2:]), labels, module)
            self._append({"iteration": iteration, "eval_accuracy_mean": result["mean"], "eval_accuracy_std": result["std"]})
            self.message(f"iteration {iteration}: test accuracy {100 * result['mean']:.2f} +- {100 * result['std']:.2f}%")

    def finish(self, synset: SyntheticSet, module: nn.Module) -> dict[str, Any]:
        condense_seconds = time.time() - self.t0
        if self.writes:
            save_grid(os.path.join(self.workdir, "images", "final.png"), synset.denormalised(),
                      self.dataset.num_classes)
        summary: dict[str, Any] = {
            "dataset": self.dataset.name, "ipc": int(self.config.ipc), "model": self.config.model,
            "iterations": int(synset.metadata["iteration"]), "condense_seconds": round(condense_seconds, 2),
            "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
            "processes": jax.process_count(), "process": jax.process_index(),
            "images_sha256": hashlib.sha256(np.ascontiguousarray(synset.images, np.float32).tobytes()).hexdigest(),
        }
        if self.config.eval.num_models:
            result = self.evaluate_set(synset.images, synset.labels, module)
            summary["evaluation"] = result
            self._append({"iteration": summary["iterations"], "eval_accuracy_mean": result["mean"],
                          "eval_accuracy_std": result["std"]})
            self.message(f"final test accuracy {100 * result['mean']:.2f} +- {100 * result['std']:.2f}% "
                         f"over {result['num_models']} networks")
            if self.config.eval.compare_random:
                baseline = random_real_evaluation(self, module)
                summary["random_real_evaluation"] = baseline
                self.message(f"random real images, same size and evaluation: {100 * baseline['mean']:.2f} "
                             f"+- {100 * baseline['std']:.2f}%")
        summary["total_seconds"] = round(time.time() - self.t0, 2)
        if self.writes:
            self.metrics.close()
            plot_history(self.metrics_path, os.path.join(self.workdir, PLOT_FILE))
            write_json(os.path.join(self.workdir, "summary.json"), summary)
        return summary
