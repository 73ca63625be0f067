#!/usr/bin/env python
"""Coreset baselines of paper Table 1, saved like condensed sets:

    python bin/baselines.py --dataset=fashion_mnist --data_dir=../shared/data/fashion_mnist.npz \\
        --method=herding --ipc=10 --out=runs/herding_fmnist_ipc10 [--feature_epochs=2 --seed=0]

Methods: random | herding | k_center | forgetting. Writes <out>/synthetic (read it with
dcjax.load_synthetic(out) or bin/show.py, as a condensation workdir) and <out>/baseline.json.
"""
from _common import run_guarded
from absl import app, flags, logging

from dcjax.baselines import DEFAULT_EPOCHS, FORGETTING_RULES, METHODS

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


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)   # Orbax logs every save at INFO
    from dcjax import baselines
    fields = {k: v for k, v in (("width", _WIDTH.value), ("depth", _DEPTH.value)) if v is not None}
    record = run_guarded(lambda: baselines.run(
        _OUT.value, _METHOD.value, _DATASET.value, _IPC.value, seed=_SEED.value, data_dir=_DATA_DIR.value,
        data_source=_DATA_SOURCE.value, model=_MODEL.value, epochs=_EPOCHS.value, batch_size=_BATCH.value,
        forgetting_rule=_RULE.value, **fields))
    print(f"{record['method']} set: {record['ipc']} images per class of {record['dataset']} in "
          f"{record['synthetic']} ({record['seconds']['total']:.1f} s); settings in {_OUT.value}/baseline.json")


if __name__ == "__main__":
    flags.mark_flags_as_required(["dataset", "method", "ipc", "out"])
    app.run(main)
