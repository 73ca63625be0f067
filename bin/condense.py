#!/usr/bin/env python
"""Condense a dataset, then evaluate the set: python bin/condense.py --config=configs/<file>.py [--config.ipc=10]

The workdir defaults to runs/<config name> (e.g. runs/cifar10_ipc10; runs/cpu_protocol_10 for
configs/cpu_protocol.py:10); give --workdir for another. Running the same command again in the same
workdir resumes from the newest checkpoint. Every local device is used. For several hosts, start the
same command once per host with --distributed (README: "Running on GPUs and Cloud TPU VMs").
"""
import sys

from _common import default_workdir, quiet_logging, run_guarded
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file under configs/.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, the synthetic set and results "
                                                "(default: runs/<config name>).")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process run (jax.distributed.initialize).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (auto-detected on TPU VMs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Number of processes (auto-detected on TPU VMs).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (auto-detected on TPU VMs).")


def main(argv):
    del argv
    quiet_logging()
    import jax
    import dcjax
    if _DISTRIBUTED.value:
        run_guarded(lambda: dcjax.sharding.initialize_distributed(
            _COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value))
    config, workdir = _CONFIG.value, _WORKDIR.value
    primary = jax.process_index() == 0
    if workdir is None:
        workdir = default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
        if primary:
            print(f"workdir: {workdir} (give --workdir to choose another)", file=sys.stderr, flush=True)
    synset = run_guarded(lambda: dcjax.condense(config, workdir))
    summary = run_guarded(lambda: dcjax.evaluate_run(config, workdir, synset))
    if not primary:
        print(f"process {jax.process_index()}: done, synthetic set sha256 {synset.sha256()}")
    elif "evaluation" in summary:
        e = summary["evaluation"]
        print(f"test accuracy {100 * e['mean']:.2f} +- {100 * e['std']:.2f}% ({e['num_models']} networks); "
              f"results in {workdir}/summary.json")
    else:
        print(f"synthetic set in {workdir}/synthetic (not evaluated: config.eval.num_models=0)")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
