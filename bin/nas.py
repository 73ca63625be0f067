#!/usr/bin/env python
"""Architecture search with condensed proxies: python bin/nas.py --config=configs/nas_<setting>.py

The workdir defaults to runs/<config name> (e.g. runs/nas_cifar10); running the same command again
in the same workdir resumes the search, training only the candidates not yet finished. Results:
<workdir>/nas.json, nas.md and nas_scatter.png. See dcjax/apps/nas.py for what is measured.
"""
import sys

from _common import default_workdir, quiet_logging, run_guarded
from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Path to a config file under configs/ (nas_*.py).",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for proxies, the results log and the report "
                                                "(default: runs/<config name>).")


def main(argv):
    del argv
    quiet_logging()
    from dcjax.apps import nas
    workdir = _WORKDIR.value
    if workdir is None:
        workdir = default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
        print(f"workdir: {workdir} (give --workdir to choose another)", file=sys.stderr, flush=True)
    try:
        report = run_guarded(lambda: nas.search(_CONFIG.value, workdir))
    except KeyboardInterrupt:
        print(f"stopped; the finished candidates are kept in {workdir}/{nas.RESULTS_LOG}: run the same command "
              f"to resume", file=sys.stderr, flush=True)
        sys.exit(130)
    for name, proxy in report["proxies"].items():
        test, rho = proxy["best_selected_test"], proxy["spearman_top_k"]
        accuracy = f"{100 * test['mean']:.2f}%" if test else "-"
        correlation = "-" if rho is None else f"{rho:.2f}"
        print(f"{name}: best selected {proxy['best_selected']} {accuracy}, Spearman top {report['top_k']} {correlation}")
    print(f"report: {workdir}/nas.md")


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(main)
