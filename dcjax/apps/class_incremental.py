"""Class-incremental learning on stored sets: the protocol of the authors' repository (`CL_DM.py`).

The classes of one dataset (the reference: CIFAR-100) arrive in `config.steps` groups in an order
drawn from a seed (`np.random.seed(order); np.random.permutation(classes)`, the reference's, for
orders 0..`config.orders`-1). At every step a memory of `config.ipc` images per class is made for
the step's classes only, from their training images: random real images, herding (on the features
of a network trained on the step's classes) or a set condensed by dcjax on those classes. Then
`config.num_eval` fresh networks (outputs for every class, as the reference's) are trained only on
the memories of every class seen so far, by the evaluation recipe (`config.recipe`: 1000 epochs
with augmentation), and tested on the test images of the seen classes. The figure of a step is the
mean +- std over orders x networks, as the reference prints it.

Where dcjax differs from the reference: it builds the herding and condensed memories itself (the
reference loads pre-computed files). As there, the networks train with DSA's DiffAugment by
default (`config.recipe.augmentation` 'dsa'). Every memory sees the same class orders and network
keys, so memories compare in pairs.

Every finished (memory, order, step) is appended at once to `<workdir>/steps.jsonl` and each memory
is saved as a set (`<workdir>/memories/<memory>/order_<o>/step_<s>/`, condensed ones in their
condensation workdirs under `<workdir>/condense/`), so a killed run resumes where it stopped.
Results: `continual.json`, `continual.md` and `continual.png` in the workdir.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from dcjax import baselines
from dcjax import data as data_lib
from dcjax.apps.continual import plot
from dcjax.apps.ranking import mean_and_std, percent
from dcjax.configuration import root_keys
from dcjax.errors import ConfigError
from dcjax.evaluate import evaluate, recipe_from_fields
from dcjax.nets import describe_module, get_model
from dcjax.support.files import write_json, write_text
from dcjax.support.progress import progress
from dcjax.support.results_log import ResultsLog
from dcjax.synthetic_set import SyntheticSet, load_synthetic, save_synthetic

MEMORIES = ("random", "herding", "condensed")
RESULTS_LOG = "steps.jsonl"


def validate(config: Any, num_classes: int | None = None) -> None:
    """ConfigError naming the first unusable field of a class-incremental config."""
    memories = tuple(config.memories)
    if not memories or len(set(memories)) != len(memories) or any(m not in MEMORIES for m in memories):
        raise ConfigError(f"config.memories must list distinct memories from {MEMORIES}, got {list(memories)}")
    for field in ("steps", "ipc", "orders", "num_eval", "epochs"):
        if not isinstance(config[field], int) or config[field] < 1:
            raise ConfigError(f"config.{field} must be an integer >= 1, got {config[field]!r}")
    if num_classes is not None and num_classes % config.steps:
        raise ConfigError(f"config.steps={config.steps} does not divide {config.dataset}'s {num_classes} classes; "
                          f"choose a divisor (the reference: 5 or 10 for CIFAR-100)")


def class_orders(num_classes: int, orders: int) -> list[np.ndarray]:
    """The reference's class orders: `np.random.seed(o); np.random.permutation(num_classes)`."""
    return [np.random.RandomState(order).permutation(num_classes) for order in range(orders)]


def fingerprint(config: Any) -> dict[str, Any]:
    keep = ("dataset", "seed", "steps", "ipc", "orders", "num_eval", "epochs", "model")
    c = config.condense
    return {**{k: config[k] for k in keep}, "recipe": config.recipe.to_dict(), "herding": config.herding.to_dict(),
            "condense": {"num_iterations": c.num_iterations, "batch_real": c.batch_real, "init": c.init,
                         "model": c.model, "net": c.net.to_dict()}}


def step_memory(config: Any, memory: str, dataset: data_lib.Dataset, classes: np.ndarray, order: int, step: int,
                workdir: str) -> SyntheticSet:
    """The memory of one step's classes (labels: the classes' own numbers in `dataset`), saved or
    reloaded under `workdir`."""
    subset = data_lib.class_subset(dataset, classes)
    key = jax.random.fold_in(jax.random.fold_in(root_keys(config.seed)["init"], order), step)
    if memory == "condensed":
        import dcjax
        c = config.condense.copy_and_resolve_references()
        with c.unlocked():
            c.dataset, c.ipc, c.eval.num_models = dataset.name, config.ipc, 0
            c.seed = config.seed + 1000 * order + step
        synset = dcjax.condense(c, os.path.join(workdir, "condense", f"order_{order}", f"step_{step}"), dataset=subset)
    else:
        directory = os.path.join(workdir, "memories", memory, f"order_{order}", f"step_{step}")
        if os.path.isdir(directory):
            synset = load_synthetic(directory)
        else:
            h, recipe = config.herding, recipe_from_fields(config.recipe, config.epochs)
            synset = baselines.build(memory, subset, config.ipc, key, h.model, h.epochs, recipe,
                                     **({"width": h.width} if h.get("width") else {}))
            synset.metadata["classes"] = [int(c) for c in classes]
            save_synthetic(directory, synset)
    return dataclasses.replace(synset, labels=np.asarray(classes)[np.asarray(synset.labels)].astype(np.int32))


def run(config: Any, workdir: str, visible: bool = True) -> dict[str, Any]:
    """Run (or resume) the class-incremental experiment of `config` in `workdir`; returns the report
    written to continual.json."""
    validate(config)
    dataset = data_lib.load(config.dataset, config.get("data_dir"), config.data_source)
    validate(config, dataset.num_classes)
    data_lib.check_batch_size(dataset, config.ipc, field="ipc")
    per_step = dataset.num_classes // config.steps
    module = get_model(config.model, dataset.num_classes, dataset.image_shape)
    recipe = recipe_from_fields(config.recipe, config.epochs)
    log = ResultsLog(os.path.join(workdir, RESULTS_LOG), fingerprint(config), ("memory", "order", "step"))
    orders = class_orders(dataset.num_classes, config.orders)
    y_test = np.asarray(dataset.y_test)
    units = [(m, o, s) for m in config.memories for o in range(config.orders) for s in range(config.steps)]
    display = progress("class-incremental learning", "step", sum(log.done(*u) for u in units), len(units), 1, visible)
    for memory in config.memories:
        for order, classes in enumerate(orders):
            if all(log.done(memory, order, s) for s in range(config.steps)):
                continue
            stored = []
            for step in range(config.steps):
                start = time.time()
                stored.append(step_memory(config, memory, dataset, classes[step * per_step:(step + 1) * per_step],
                                          order, step, workdir))
                if log.done(memory, order, step):
                    continue
                seen = classes[:(step + 1) * per_step]
                test = np.flatnonzero(np.isin(y_test, seen))
                accs = evaluate(module, np.concatenate([m.images for m in stored]),
                                np.concatenate([m.labels for m in stored]), dataset.x_test[jnp.asarray(test)],
                                dataset.y_test[jnp.asarray(test)],
                                jax.random.fold_in(root_keys(config.seed)["eval"], order), config.num_eval, recipe)
                log.append({"memory": memory, "order": order, "step": step, "classes_seen": len(seen),
                            "accuracies": [float(a) for a in accs], "seconds": round(time.time() - start, 1)})
                display.update(sum(log.done(*u) for u in units), f"({memory}, order {order}, step {step + 1})")
    display.close()
    report = summarise(config, module, log.rows, per_step)
    write_json(os.path.join(workdir, "continual.json"), report)
    write_text(os.path.join(workdir, "continual.md"), markdown(report))
    plot(report, os.path.join(workdir, "continual.png"))
    return report


def summarise(config: Any, module: Any, rows: dict[tuple, dict[str, Any]], per_step: int) -> dict[str, Any]:
    """Per memory and step: mean +- std of the test accuracy over orders x networks."""
    methods = {}
    for memory in config.memories:
        stages = []
        for step in range(config.steps):
            accs = [a for o in range(config.orders) for a in rows[memory, o, step]["accuracies"]]
            stages.append(mean_and_std(accs))
        methods[memory] = {"stages": stages, "seconds": [sum(rows[memory, o, s]["seconds"] for o in range(config.orders))
                                                           for s in range(config.steps)]}
    return {"protocol": "class-incremental on stored sets (the authors' CL_DM.py)", "dataset": config.dataset,
            "tasks": [f"{per_step * (s + 1)} classes" for s in range(config.steps)], "steps": config.steps,
            "ipc": config.ipc, "orders": config.orders, "num_eval": config.num_eval, "epochs": config.epochs,
            "recipe": config.recipe.to_dict(), "network": describe_module(module), "methods": methods,
            "rows": [rows[k] for k in sorted(rows)]}


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Class-incremental learning on {report['dataset']}: {report['steps']} steps (the authors' CL_DM.py "
             f"protocol)", "",
             f"Test accuracy % on the classes seen so far, mean +- std over {report['orders']} class orders x "
             f"{report['num_eval']} networks trained {report['epochs']} epochs (augmentation "
             f"{report['recipe']['augmentation']}) on the memories only; {report['ipc']} images per class; network "
             f"{report['network']}.", "",
             "| memory | " + " | ".join(report["tasks"]) + " | seconds |", "|---" * (len(report["tasks"]) + 2) + "|"]
    for name, m in report["methods"].items():
        cells = [percent(s) for s in m["stages"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(m['seconds']):.0f} |")
    return "\n".join(lines) + "\n"
