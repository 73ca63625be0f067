"""The second stage of a condensation run: train fresh networks on its set and test them as the
run's config says (`config.eval`), and record the result in the workdir.

`evaluate_run` is the call after `dcjax.condense` (the command line makes both); `evaluation_point`
evaluates the set part-way through a run (`config.eval_every`). Both use the same network keys
(from `config.seed`), so accuracies along a run and at its end compare sets, not initialisations.
"""
from __future__ import annotations

import contextlib
from typing import Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh

from dcjax import data as data_lib
from dcjax.baselines import random_real
from dcjax.configuration import root_keys, run_setting
from dcjax.evaluate import EvalRecipe, evaluate_set, evaluation_model
from dcjax.support.lock import WorkdirLock
from dcjax.support.run_log import RunLog, read_summary
from dcjax.synthetic_set import SyntheticSet


def evaluate_images(config: Any, dataset: data_lib.Dataset, condensing_module: nn.Module, mesh: Mesh,
                    log: RunLog, images: Any, labels: Any, label: str) -> dict[str, Any]:
    """`config.eval.num_models` networks (the config's evaluation model and recipe) trained on
    (images, labels) and tested on the dataset's test split, with progress shown as they train."""
    model = evaluation_model(config, condensing_module, dataset.num_classes, dataset.image_shape)
    recipe = EvalRecipe.from_config(config)
    progress = log.evaluation_progress(f"evaluating {label}", config.eval.num_models, sum(recipe.phase_epochs()))
    try:
        return evaluate_set(images, labels, (dataset.x_test, dataset.y_test), model, recipe,
                            root_keys(config.seed)["eval"], config.eval.num_models, mesh, progress)
    finally:
        progress.close()


def evaluation_point(config: Any, dataset: data_lib.Dataset, condensing_module: nn.Module, mesh: Mesh,
                     log: RunLog, iteration: int, images: np.ndarray) -> dict[str, Any] | None:
    """Picture and (if config.eval.num_models) evaluate the class-major images (C, ipc, H, W, ch)
    reached after `iteration`."""
    log.grid(f"iter_{iteration:06d}", images)
    if not config.eval.num_models:
        return None
    num_classes, ipc = images.shape[:2]
    result = evaluate_images(config, dataset, condensing_module, mesh, log, images.reshape((-1,) + images.shape[2:]),
                             np.repeat(np.arange(num_classes), ipc), f"iteration {iteration}")
    log.accuracy(iteration, result, f"iteration {iteration}")
    return result


def evaluate_run(config: Any, workdir: str, synset: SyntheticSet) -> dict[str, Any]:
    """Evaluate a finished condensation's set (and, with config.eval.compare_random, as many random
    real images per class, drawn with the run's initialisation key: the start of an init='real'
    run); adds `evaluation` (and `random_real_evaluation`) to the workdir's summary.json and
    returns the whole summary."""
    dataset, module, layout = run_setting(config)
    mesh = layout.mesh
    with WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
        log = RunLog(workdir, dataset.class_names, dataset.mean, dataset.std, config.log_every)
        summary: dict[str, Any] = {}
        if config.eval.num_models:
            result = evaluate_images(config, dataset, module, mesh, log, synset.images, synset.labels, "the final set")
            log.accuracy(int(synset.metadata["iteration"]), result, "final set")
            summary["evaluation"] = result
            if config.eval.compare_random:
                baseline = random_real(dataset, int(config.ipc), root_keys(config.seed)["init"])
                result = evaluate_images(config, dataset, module, mesh, log, baseline.images, baseline.labels,
                                         "random real images")
                log.message(f"random real images, same size and evaluation: {100 * result['mean']:.2f} "
                            f"+- {100 * result['std']:.2f}%")
                summary["random_real_evaluation"] = result
        log.summary(summary)
        log.close()
    return read_summary(workdir)
