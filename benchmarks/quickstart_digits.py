"""The README's quickstart, measured: configs/digits.py condensed and evaluated from scratch.

    python -m benchmarks.quickstart_digits      (from the repository root)

Runs what `python bin/condense.py --config=configs/digits.py` runs (ipc 1, K=200, batch_real 64,
5 ConvNets x 300 epochs, and the same evaluation of 1 random real image per class) in a fresh
workdir, and writes the accuracies and wall times to benchmarks/results/quickstart_digits.{json,md}.
"""
import os
import shutil
import time

from absl import app, flags, logging

import dcjax
from benchmarks.provenance import REPO_ROOT as ROOT
from benchmarks.provenance import markdown_line, provenance
from configs import digits
from dcjax import evaluation_report

_RUNS = flags.DEFINE_string("runs", os.path.join(ROOT, "runs"), "Where the condensation workdir goes.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results"), "Where results are written.")
COMMAND = "python -m benchmarks.quickstart_digits"


def markdown(results: dict) -> str:
    d, r = results["summary"]["evaluation"], results["summary"]["random_real_evaluation"]
    return "\n".join([
        "# Quickstart: configs/digits.py (scikit-learn 8x8 digits, ipc 1)", "",
        "K=200 outer iterations, batch_real 64, ConvNet-128 of depth 2; evaluation: 5 fresh networks x "
        "300 epochs (301 as the reference counts), no augmentation; random real images evaluated with the "
        "same network keys and recipe. Accuracy: mean +- std over the 5 networks.", "",
        f"Command: `{results['command']}`  ", markdown_line(results), "",
        "| set (10 images) | test acc. % | evaluation s |", "|---|---|---|",
        f"| dcjax condensed | {100 * d['mean']:.2f} +- {100 * d['std']:.2f} | {d['seconds']:.0f} |",
        f"| random real images | {100 * r['mean']:.2f} +- {100 * r['std']:.2f} | {r['seconds']:.0f} |", "",
        f"Condensing {results['summary']['condense_seconds']:.0f} s (compilation included); the whole command "
        f"{results['wall_seconds']:.0f} s.", ""])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    workdir = os.path.join(_RUNS.value, "quickstart_digits")
    shutil.rmtree(workdir, ignore_errors=True)   # measure from scratch, never a resumed run
    results = {"command": COMMAND, "provenance": provenance()}
    config = digits.get_config()
    start = time.time()
    results["summary"] = dcjax.evaluate_run(config, workdir, dcjax.condense(config, workdir))
    results["wall_seconds"] = round(time.time() - start, 1)
    evaluation_report.write_results(_OUT.value, results, markdown(results), "quickstart_digits")
    print(markdown(results), flush=True)


if __name__ == "__main__":
    app.run(main)
