#!/usr/bin/env python
"""Coreset baselines of paper Table 1, saved like condensed sets:

    python bin/baselines.py --dataset=fashion_mnist --data_dir=/path/to/fashion_mnist.npz \\
        --method=herding --ipc=10 --out=runs/herding_fmnist_ipc10 [--feature_epochs=2 --seed=0]

Methods: random | herding | k_center | forgetting. Writes <out>/synthetic (read it with
dcjax.load_synthetic(out) or bin/show.py, as a condensation workdir) and <out>/baseline.json.

The output directory's handling (`run`, `check_out_dir`: what may already be in --out, the workdir
lock, baseline.json) lives here rather than in dcjax.baselines: it belongs to this one command, the
library only builds sets (`dcjax.baselines.build`), and the tests drive it through the command
line, so nothing needs to import it.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import numpy as np
from _common import quiet_logging, run_guarded
from absl import app, flags

from dcjax import baselines
from dcjax import data as data_lib
from dcjax.baselines import DEFAULT_EPOCHS, FORGETTING_RULES, METHODS
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe
from dcjax.nets import get_model
from dcjax.support.files import write_json
from dcjax.support.lock import LOCK_FILE, WorkdirLock
from dcjax.synthetic_set import SYNTHETIC_DIR, load_synthetic, save_synthetic

BASELINE_FILE = "baseline.json"

_DATASET = flags.DEFINE_string("dataset", None, "digits | mnist | fashion_mnist | svhn | cifar10 | cifar100 | usps")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The dataset's .npz file, IDX directory or tfds data_dir.")
_DATA_SOURCE = flags.DEFINE_string("data_source", "auto", "auto | tfds | npz | idx | sklearn")
_METHOD = flags.DEFINE_string("method", None, " | ".join(METHODS))
_IPC = flags.DEFINE_integer("ipc", None, "Images per class.")
_OUT = flags.DEFINE_string("out", None, "Output directory: new, empty, or an earlier output of the same method.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every random draw (images, network init, shuffling).")
_MODEL = flags.DEFINE_string("feature_model", "ConvNet",
                             "Network trained on the whole set (features for herding/k_center; forgetting).")
_WIDTH = flags.DEFINE_integer("feature_width", None, "Override of the network's width.")
_DEPTH = flags.DEFINE_integer("feature_depth", None, "Override of the network's depth.")
_EPOCHS = flags.DEFINE_integer("feature_epochs", DEFAULT_EPOCHS, "Epochs of the whole-set network.")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Batch size of the whole-set network.")
_RULE = flags.DEFINE_string("forgetting_rule", "events",
                            f"How forgetting ranks examples: {' | '.join(FORGETTING_RULES)} (see dcjax.baselines).")


def _occupant(out: str) -> str | None:
    """What already lives in `out`: None if it is missing or empty, else the metadata method of the set
    there (from baseline.json, else from synthetic/) or a phrase describing foreign contents."""
    if not os.path.exists(out):
        return None
    entries = set(os.listdir(out)) - {LOCK_FILE}
    if not entries:
        return None
    if BASELINE_FILE in entries:
        try:
            with open(os.path.join(out, BASELINE_FILE)) as f:
                return str(json.load(f).get("method"))
        except (OSError, ValueError, AttributeError):
            return f"an unreadable {BASELINE_FILE}"
    if SYNTHETIC_DIR in entries:
        return str(load_synthetic(out).metadata.get("method", "a condensed set"))
    return "files that are not a dcjax set"


def check_out_dir(out: str, method: str) -> None:
    """Refuse an `out` that holds anything but an earlier set of the same method (which is replaced)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file; give the path of a new or empty directory")
    occupant = _occupant(out)
    if occupant not in (None, baselines.check_method(method)):
        what = f"a {occupant!r} baseline set" if occupant in METHODS.values() else occupant
        raise ConfigError(f"--out {out} already holds {what}; give a new or empty --out, or delete that "
                          f"directory to replace it")


def run(out: str, method: str, dataset_name: str, ipc: int, seed: int = 0, data_dir: str | None = None,
        data_source: str = "auto", model: str = "ConvNet", epochs: int = DEFAULT_EPOCHS, batch_size: int = 256,
        forgetting_rule: str = "events", **model_fields: Any) -> dict[str, Any]:
    """Build baseline `method` and save it as `<out>/synthetic` (so `dcjax.load_synthetic(out)` reads
    it like a condensation workdir) plus `<out>/baseline.json` (settings, timing, selection record).

    `out` must be missing, empty, or an earlier output of the same method. Returns the JSON record.
    """
    start = time.time()
    recorded_method = baselines.check_method(method)
    if not isinstance(ipc, int) or ipc < 1:
        raise ConfigError(f"--ipc must be an integer >= 1 (images per class), got {ipc!r}")
    baselines.check_epochs(epochs)
    baselines.check_forgetting_rule(forgetting_rule)
    check_out_dir(out, method)
    if method != "random":   # a bad network name or field fails now, not after loading the data
        module = get_model(model, 1, **model_fields)
        if method != "forgetting":
            baselines.require_embed(module)
    dataset = data_lib.load(dataset_name, data_dir, data_source)
    smallest = int(np.min(np.asarray(dataset.class_counts)))
    if ipc > smallest:
        raise ConfigError(f"--ipc={ipc} but the smallest class of {dataset.name} has only {smallest} "
                          f"training images; choose --ipc between 1 and {smallest}")
    loaded = time.time()
    record: dict[str, Any] = {
        "method": recorded_method, "dataset": dataset.name, "data_dir": data_dir, "data_source": data_source,
        "ipc": ipc, "seed": seed, "status": "running", "backend": jax.default_backend()}
    if method != "random":
        record.update(model=model, model_fields=model_fields, epochs=epochs, batch_size=batch_size)
    if method == "forgetting":
        record.update(forgetting_rule=forgetting_rule)
    with WorkdirLock(out):
        check_out_dir(out, method)   # again, now that no other run can write here
        write_json(os.path.join(out, BASELINE_FILE), record)
        synset = baselines.build(method, dataset, ipc, jax.random.PRNGKey(seed), model, epochs,
                                 EvalRecipe(batch_size=batch_size), forgetting_rule, **model_fields)
        selected = time.time()
        # Where the real data came from, so bin/evaluate.py finds its test split without flags.
        synset.metadata.update(data_dir=os.path.abspath(data_dir) if data_dir else None, data_source=data_source)
        path = save_synthetic(os.path.join(out, SYNTHETIC_DIR), synset)
        record.update(status="done", synthetic=path, selection=synset.metadata["selection"], seconds={
            "load_data": round(loaded - start, 2), "select": round(selected - loaded, 2),
            "total": round(time.time() - start, 2)})
        write_json(os.path.join(out, BASELINE_FILE), record)
    return record


def main(argv):
    del argv
    quiet_logging()
    fields = {k: v for k, v in (("width", _WIDTH.value), ("depth", _DEPTH.value)) if v is not None}
    record = run_guarded(lambda: run(
        _OUT.value, _METHOD.value, _DATASET.value, _IPC.value, seed=_SEED.value, data_dir=_DATA_DIR.value,
        data_source=_DATA_SOURCE.value, model=_MODEL.value, epochs=_EPOCHS.value, batch_size=_BATCH.value,
        forgetting_rule=_RULE.value, **fields))
    print(f"{record['method']} set: {record['ipc']} images per class of {record['dataset']} in "
          f"{record['synthetic']} ({record['seconds']['total']:.1f} s); settings in {_OUT.value}/{BASELINE_FILE}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["dataset", "method", "ipc", "out"])
    app.run(main)
