"""Continual learning at a CPU budget (configs/continual_cpu.py), measured.

    python -m benchmarks.continual_cpu      (from the repository root)

Runs what `python bin/continual.py --config=configs/continual_cpu.py` runs, in the workdir
runs/continual_cpu (resumed after its last finished stage if it is there; `--fresh` starts over),
and copies the report with its command, budget, wall time and provenance to
benchmarks/results/continual_cpu.{json,md,png}.
"""
import os
import shutil
import time

from absl import app, flags, logging

from benchmarks.provenance import REPO_ROOT as ROOT
from benchmarks.provenance import markdown_line, provenance
from configs import continual_cpu
from dcjax import evaluation_report
from dcjax.apps import continual

_RUNS = flags.DEFINE_string("runs", os.path.join(ROOT, "runs"), "Where the run's workdir goes.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results"), "Where results are written.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data"),
                                "Directory holding fashion_mnist.npz and usps.npz.")
_FRESH = flags.DEFINE_bool("fresh", False, "Delete the workdir first (no resumed stages or condensed memories).")
COMMAND = "python -m benchmarks.continual_cpu"
NAME = "continual_cpu"


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = continual_cpu.get_config()
    config.data_dir = _DATA_DIR.value
    workdir = os.path.join(_RUNS.value, NAME)
    if _FRESH.value:
        shutil.rmtree(workdir, ignore_errors=True)
    resumed = os.path.isdir(os.path.join(workdir, "checkpoints"))
    start = time.time()
    report = continual.run(config, workdir)
    results = {"command": COMMAND, "provenance": provenance(), "config": "configs/continual_cpu.py",
               "wall_seconds_this_run": round(time.time() - start, 1), "resumed": resumed, "report": report}
    text = "\n".join([
        continual.markdown(report).rstrip("\n"), "",
        "Not the paper's sequence (SVHN -> MNIST -> USPS) nor its budget: configs/continual_cpu.py states both. "
        "The paper's finding (Figure 4): the condensed memory beats herding at T3, by 2.3 points without KD.", "",
        f"Command: `{COMMAND}`  ", markdown_line(results),
        f"Wall time of this run: {results['wall_seconds_this_run']:.0f} s (condensing the memories included)"
        + (" (resumed: stages finished by an earlier run of the same code were kept)" if resumed else ""), ""])
    evaluation_report.write_results(_OUT.value, results, text, NAME)
    shutil.copyfile(os.path.join(workdir, "continual.png"), os.path.join(_OUT.value, NAME + ".png"))
    print(text, flush=True)


if __name__ == "__main__":
    app.run(main)
