#!/usr/bin/env python
"""Evaluate saved sets on one or many architectures:

    python bin/evaluate.py --set=runs/x [--set=runs/herding] --models=ConvNet,MLP,LeNet --num_models=20

A set is a run's workdir, its synthetic/ directory, a baseline's directory or an exported .npz.
Each set's results go next to it as evaluation.json and evaluation.md (or into --out). All sets use
the same network keys (--seed), so their accuracies compare directly.
"""
import sys

from _common import run_guarded
from absl import app, flags, logging

_SETS = flags.DEFINE_multi_string("set", None, "A saved set (repeat the flag for several).")
_MODELS = flags.DEFINE_list("models", ["ConvNet"], "Evaluation architectures (get_model names).")
_NUM_MODELS = flags.DEFINE_integer("num_models", 5, "Networks trained per set and architecture.")
_EPOCHS = flags.DEFINE_integer("epochs", 300, "Training epochs (the reference runs epochs + 1).")
_AUGMENTATION = flags.DEFINE_string("augmentation", "none", "none, or ops joined by '_' (crop, scale, rotate, noise).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 256, "Training batch size.")
_LR = flags.DEFINE_float("lr", 0.01, "Initial learning rate (x0.1 after epochs // 2 + 1).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the networks' keys.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the set's real dataset is (default: as when it was made).")
_KEEP_BN = flags.DEFINE_bool("keep_batch_norm", False, "Evaluate batch-norm models as they are (reference 'SS').")
_OUT = flags.DEFINE_string("out", None, "Directory for the results (default: next to each set).")


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)   # Orbax logs every load at INFO
    from dcjax import augment, evaluation_report
    from dcjax.evaluate import EvalRecipe

    def work():
        augment.parse_strategy(_AUGMENTATION.value)
        recipe = EvalRecipe(epochs=_EPOCHS.value, batch_size=_BATCH_SIZE.value, lr=_LR.value,
                            augmentation=_AUGMENTATION.value)
        for path in _SETS.value:
            payload = evaluation_report.evaluate_saved(
                path, _MODELS.value, _NUM_MODELS.value, recipe, _SEED.value, _DATA_DIR.value, _KEEP_BN.value,
                "python " + " ".join(sys.argv), _OUT.value)
            for row in payload["results"]:
                print(f"{payload['description']} | {row['evaluated_as']}: {100 * row['mean']:.2f} +- "
                      f"{100 * row['std']:.2f}% ({row['num_models']} networks, {row['seconds']:.0f} s)")
            print(f"results in {payload['files'][0]} and {payload['files'][1]}")

    run_guarded(work)


if __name__ == "__main__":
    flags.mark_flags_as_required(["set"])
    app.run(main)
