"""Architecture search on Fashion-MNIST at a CPU budget (configs/nas_fashion_mnist_cpu.py), measured.

    python -m benchmarks.nas_fashion_mnist      (from the repository root)

Runs what `python bin/nas.py --config=configs/nas_fashion_mnist_cpu.py` runs, in the workdir
runs/nas_fashion_mnist_cpu (resumed if it is there: every finished candidate is kept; `--fresh`
starts over), and copies the report with its command, budget, wall time and provenance to
benchmarks/results/nas_fashion_mnist.{json,md} and its Figure-F5 scatter to
benchmarks/results/nas_fashion_mnist.png.
"""
import os
import shutil
import time

from absl import app, flags, logging

from benchmarks.provenance import REPO_ROOT as ROOT
from benchmarks.provenance import markdown_line, provenance
from configs import nas_fashion_mnist_cpu
from dcjax import evaluation_report
from dcjax.apps import nas

_RUNS = flags.DEFINE_string("runs", os.path.join(ROOT, "runs"), "Where the search workdir goes.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results"), "Where results are written.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data", "fashion_mnist.npz"),
                                "The offline Fashion-MNIST (.npz or IDX directory); empty: tensorflow-datasets.")
_FRESH = flags.DEFINE_bool("fresh", False, "Delete the workdir first (no resumed candidates).")
COMMAND = "python -m benchmarks.nas_fashion_mnist"
NAME = "nas_fashion_mnist"


def markdown(results: dict) -> str:
    """The committed Markdown of a results record (the search's table, then where and how it ran)."""
    return "\n".join([
        nas.markdown(results["report"]).rstrip("\n"), "",
        f"Command: `{COMMAND}` (config configs/nas_fashion_mnist_cpu.py: its docstring states the budget)  ",
        markdown_line(results),
        f"Wall time of this run: {results['wall_seconds_this_run']:.0f} s"
        + (" (resumed: candidates finished by an earlier run of the same code were kept)" if results["resumed"] else "")
        + ("  \n" + results["note"] if results.get("note") else ""), ""])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    config = nas_fashion_mnist_cpu.get_config()
    config.data_dir = _DATA_DIR.value or None
    workdir = os.path.join(_RUNS.value, "nas_fashion_mnist_cpu")
    if _FRESH.value:
        shutil.rmtree(workdir, ignore_errors=True)
    resumed = os.path.exists(os.path.join(workdir, nas.RESULTS_LOG))
    start = time.time()
    report = nas.search(config, workdir)
    results = {"command": COMMAND, "provenance": provenance(), "config": "configs/nas_fashion_mnist_cpu.py",
               "wall_seconds_this_run": round(time.time() - start, 1), "resumed": resumed, "report": report}
    text = markdown(results)
    evaluation_report.write_results(_OUT.value, results, text, NAME)
    shutil.copyfile(os.path.join(workdir, "nas_scatter.png"), os.path.join(_OUT.value, NAME + ".png"))
    print(text, flush=True)


if __name__ == "__main__":
    app.run(main)
