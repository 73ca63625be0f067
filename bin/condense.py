#!/usr/bin/env python
"""Condense a dataset: python bin/condense.py --config=configs/<file>.py [--config.ipc=10] --workdir=runs/x

Running the same command again in the same workdir resumes from the newest checkpoint.
"""
from _common import run_guarded
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file under configs/.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, the synthetic set and results.")


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)   # Orbax logs every save at INFO
    import dcjax
    summary = run_guarded(lambda: dcjax.run(_CONFIG.value, _WORKDIR.value))
    if "evaluation" in summary:
        e = summary["evaluation"]
        print(f"test accuracy {100 * e['mean']:.2f} +- {100 * e['std']:.2f}% ({e['num_models']} networks); "
              f"results in {_WORKDIR.value}/summary.json")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
