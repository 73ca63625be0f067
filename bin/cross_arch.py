#!/usr/bin/env python
"""Condense with each architecture A and evaluate with each B (paper Table 2), from one command:

    python bin/cross_arch.py --config=configs/cpu_protocol.py:1 --condense=ConvNet,MLP,LeNet \\
        --evaluate=ConvNet,MLP,LeNet --workdir=runs/cross_arch

Condensation workdirs are <workdir>/condense_<A> (resumable); the matrix is written to
<workdir>/cross_architecture.json and .md. Evaluation follows the config's eval fields.
"""
import sys

from _common import quiet_logging, run_guarded
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Condensation config (model is set per row).")
_CONDENSE = flags.DEFINE_list("condense", ["ConvNet", "MLP", "LeNet"], "Architectures to condense with.")
_EVALUATE = flags.DEFINE_list("evaluate", ["ConvNet", "MLP", "LeNet"], "Architectures to evaluate with.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the condensations and the matrix.")


def main(argv):
    del argv
    quiet_logging()
    from dcjax.cross_architecture import cross_architecture
    payload = run_guarded(lambda: cross_architecture(_CONFIG.value, _CONDENSE.value, _EVALUATE.value,
                                                     _WORKDIR.value, "python " + " ".join(sys.argv)))
    print(open(payload["files"][1]).read())


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
