#!/usr/bin/env python
"""Evaluate saved sets on one or many architectures:

    python bin/evaluate.py --set=runs/x [--set=runs/herding] --models=ConvNet,MLP,LeNet --num_models=20

A set is a run's workdir, its synthetic/ directory, a baseline's directory or an exported .npz.
Each set is trained with the recipe it records (a condensed set: its run's config.eval, e.g. 1000
epochs with crop/scale/rotate for MNIST; a baseline: the paper's recipe for its dataset); the recipe
flags change it. Each set's results go next to it as evaluation.json and evaluation.md (or into
--out). All sets use the same network keys (--seed), so their accuracies compare directly.
"""
import sys

from _common import quiet_logging, run_guarded
from absl import app, flags

_SETS = flags.DEFINE_multi_string("set", None, "A saved set (repeat the flag for several).")
_MODELS = flags.DEFINE_list("models", ["ConvNet"], "Evaluation architectures (get_model names).")
_NUM_MODELS = flags.DEFINE_integer("num_models", 5, "Networks trained per set and architecture.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Training epochs (the reference runs epochs + 1); default: the set's recipe.")
_AUGMENTATION = flags.DEFINE_string("augmentation", None, "none, ops joined by '_' (crop, scale, rotate, noise), or "
                                    "dsa (DSA's DiffAugment; dsa:<ops> for other ops from color, crop, "
                                    "cutout, flip, scale, rotate); default: the set's recipe.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Training batch size; default: the set's recipe.")
_LR = flags.DEFINE_float("lr", None, "Initial learning rate (x0.1 after epochs // 2 + 1); default: the set's recipe.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the networks' keys.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Where the set's real dataset is (default: as when it was made).")
_KEEP_BN = flags.DEFINE_bool("keep_batch_norm", False, "Evaluate batch-norm models as they are (reference 'SS').")
_OUT = flags.DEFINE_string("out", None, "Directory for the results (default: next to each set).")


def main(argv):
    del argv
    quiet_logging()
    from dcjax import evaluation_report
    from dcjax.evaluate import check_augmentation

    def work():
        changes = {name: flag.value for name, flag in (("epochs", _EPOCHS), ("augmentation", _AUGMENTATION),
                                                        ("batch_size", _BATCH_SIZE), ("lr", _LR))
                   if flag.value is not None}
        if "augmentation" in changes:
            changes["augmentation"] = check_augmentation(changes["augmentation"])
        for path in _SETS.value:
            payload = evaluation_report.evaluate_saved(
                path, _MODELS.value, _NUM_MODELS.value, changes, _SEED.value, _DATA_DIR.value, _KEEP_BN.value,
                "python " + " ".join(sys.argv), _OUT.value)
            for row in payload["results"]:
                print(f"{payload['description']} | {row['evaluated_as']}: {100 * row['mean']:.2f} +- "
                      f"{100 * row['std']:.2f}% ({row['num_models']} networks, {row['seconds']:.0f} s)")
            print(f"results in {payload['files'][0]} and {payload['files'][1]}")

    run_guarded(work)


if __name__ == "__main__":
    flags.mark_flags_as_required(["set"])
    app.run(main)
