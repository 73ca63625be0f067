"""Evaluate saved sets (condensed or baseline) on any architectures; results as JSON and Markdown.

Every set is evaluated with the same network keys (from `seed`), so rows and columns of a table
compare sets, not luck of initialisation. Batch-norm evaluation models are replaced by their
instance-norm twins unless `keep_batch_norm` (reference eval mode 'S' vs 'SS').
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence


from dcjax import data as data_lib
from dcjax.support.files import write_json, write_text
from dcjax.synthetic_set import SyntheticSet, load_synthetic
from dcjax.configuration import root_keys
from dcjax.errors import DataError
from dcjax.evaluate import EvalRecipe, evaluate_set
from dcjax.nets import get_model, instance_norm_twin

RESULTS_NAME = "evaluation"


def dataset_for(synset: SyntheticSet, data_dir: str | None = None, data_source: str | None = None) -> data_lib.Dataset:
    """The real dataset a set was made from (its test split is the evaluation's test set)."""
    config = synset.metadata.get("config") or {}
    name = synset.metadata.get("dataset")
    if not name:
        raise DataError("the set's metadata names no dataset; it was not written by dcjax")
    dataset = data_lib.load(name, data_dir or config.get("data_dir") or synset.metadata.get("data_dir"),
                            data_source or config.get("data_source") or synset.metadata.get("data_source") or "auto")
    if tuple(dataset.image_shape) != tuple(synset.images.shape[1:]):
        raise DataError(f"the set's images are {tuple(synset.images.shape[1:])} but dataset {name!r} has "
                        f"{tuple(dataset.image_shape)}; pass the dataset it was made from (--data_dir)")
    return dataset


def evaluate_on_models(synset: SyntheticSet, dataset: data_lib.Dataset, models: Sequence[str], num_models: int,
                       recipe: EvalRecipe, seed: int = 0, keep_batch_norm: bool = False) -> list[dict[str, Any]]:
    """One `evaluate_set` record per architecture, plus its name and what it was evaluated as."""
    results = []
    for name in models:
        module = get_model(name, dataset.num_classes, dataset.image_shape)
        if not keep_batch_norm:
            module = instance_norm_twin(module)
        record = evaluate_set(synset.images, synset.labels, (dataset.x_test, dataset.y_test), module, recipe,
                              root_keys(seed)["eval"], num_models)
        results.append({**record, "model": name, "evaluated_as": type(module).__name__ + _norm_suffix(module),
                        "network": record["model"]})
    return results


def _norm_suffix(module: Any) -> str:
    norm = getattr(module, "norm", None)
    return f" ({norm} norm)" if norm and norm != "none" else ""


def describe_set(synset: SyntheticSet) -> str:
    meta = synset.metadata
    method = meta.get("method", "dcjax")
    return f"{method}, {meta.get('dataset')}, ipc {meta.get('ipc')}" + (
        f", condensed with {meta['model']} for {meta['iteration']} iterations" if "iteration" in meta else "")


def markdown_table(title: str, rows: list[dict[str, Any]], recipe: EvalRecipe, command: str) -> str:
    lines = [f"# {title}", "", f"Command: `{command}`  ",
             f"Recipe: {json.dumps(dataclasses.asdict(recipe))}; accuracy mean +- std over the networks.", "",
             "| set | evaluation model | networks | test acc. % | seconds |", "|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['set']} | {row['evaluated_as']} | {row['num_models']} | "
                     f"{100 * row['mean']:.2f} +- {100 * row['std']:.2f} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def write_results(directory: str, payload: dict[str, Any], markdown: str, name: str = RESULTS_NAME) -> tuple[str, str]:
    """`<directory>/<name>.json` and `.md`, each written atomically."""
    return (write_json(os.path.join(directory, f"{name}.json"), payload),
            write_text(os.path.join(directory, f"{name}.md"), markdown))


def evaluate_saved(path: str, models: Sequence[str], num_models: int, recipe_changes: dict[str, Any] | None = None,
                   seed: int = 0, data_dir: str | None = None, keep_batch_norm: bool = False, command: str = "",
                   out_dir: str | None = None) -> dict[str, Any]:
    """Evaluate the set at `path` on `models` with the recipe the set records (`EvalRecipe.of_set`:
    a condensed MNIST set is trained 1000 epochs with crop/scale/rotate, as its run was), changed by
    `recipe_changes`; writes evaluation.json/.md next to the set (or in `out_dir`)."""
    synset = load_synthetic(path)
    recipe = dataclasses.replace(EvalRecipe.of_set(synset.metadata), **(recipe_changes or {}))
    dataset = dataset_for(synset, data_dir)
    rows = evaluate_on_models(synset, dataset, models, num_models, recipe, seed, keep_batch_norm)
    label = describe_set(synset)
    for row in rows:
        row["set"] = label
    payload = {"set": os.path.abspath(path), "description": label, "recipe": dataclasses.asdict(recipe),
               "seed": seed, "command": command, "results": rows}
    directory = out_dir or (os.path.dirname(path) if path.endswith(".npz") else path)
    payload["files"] = write_results(directory, payload, markdown_table(f"Evaluation of {label}", rows, recipe, command))
    return payload
