#!/usr/bin/env python
"""Condense a dataset: python bin/condense.py --config=configs/<file>.py [--config.ipc=10] --workdir=runs/x

Running the same command again in the same workdir resumes from the newest checkpoint. Every local
device is used. For several hosts, start the same command once per host with --distributed
(README: "Running on GPUs and Cloud TPU VMs").
"""
from _common import run_guarded
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file under configs/.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, the synthetic set and results.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process run (jax.distributed.initialize).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (auto-detected on TPU VMs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (auto-detected on TPU VMs).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (auto-detected on TPU VMs).")


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)   # Orbax logs every save at INFO
    import dcjax
    if _DISTRIBUTED.value:
        run_guarded(lambda: dcjax.sharding.initialize_distributed(
            _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value))
    summary = run_guarded(lambda: dcjax.run(_CONFIG.value, _WORKDIR.value))
    if summary["process"] != 0:
        print(f"process {summary['process']}: done, synthetic set sha256 {summary['images_sha256']}")
    elif "evaluation" in summary:
        e = summary["evaluation"]
        print(f"test accuracy {100 * e['mean']:.2f} +- {100 * e['std']:.2f}% ({e['num_models']} networks); "
              f"results in {_WORKDIR.value}/summary.json")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
