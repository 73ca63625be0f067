#!/usr/bin/env python
"""Continual learning with condensed or herding memories: python bin/continual.py --config=configs/continual_<setting>.py

Task-incremental (the paper's, dcjax/apps/continual.py) or class-incremental on stored sets (the
authors' CL_DM.py, dcjax/apps/class_incremental.py), as the config's `protocol` says. The workdir
defaults to runs/<config name>; running the same command again in the same workdir resumes after
the last finished stage. Results: <workdir>/continual.json, continual.md and
continual.png. See dcjax/apps/continual.py for the protocol.
"""
import sys

from _common import default_workdir, quiet_logging, run_guarded
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file under configs/ (continual_*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for memories, checkpoints and the report "
                                                "(default: runs/<config name>).")


def main(argv):
    del argv
    quiet_logging()
    from dcjax.apps import class_incremental, continual
    protocol = continual if _CONFIG.value.get("protocol") != "class_incremental" else class_incremental
    workdir = _WORKDIR.value
    if workdir is None:
        workdir = default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
        print(f"workdir: {workdir} (give --workdir to choose another)", file=sys.stderr, flush=True)
    try:
        report = run_guarded(lambda: protocol.run(_CONFIG.value, workdir))
    except KeyboardInterrupt:
        print(f"stopped; finished stages are kept in {workdir}: run the same command to resume", file=sys.stderr,
              flush=True)
        sys.exit(130)
    print(protocol.markdown(report), end="")
    print(f"report: {workdir}/continual.md")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
