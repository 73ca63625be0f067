"""The CPU protocol on Fashion-MNIST (a reduced budget a 2-core CPU finishes in about an hour):
dcjax against random real images, same evaluation.

    python -m benchmarks.cpu_protocol --ipc 1 --ipc 10      (from the repository root)

Condenses with configs/cpu_protocol.py (ipc 1: K=200; ipc 10: K=10; batch_real 64; ConvNet-128;
init noise; metric 'ours'), evaluates 5 fresh ConvNets x 300 epochs without augmentation, and
evaluates `ipc` random real images per class with the same networks' keys and recipe. Results go
to benchmarks/results/cpu_protocol_fashion_mnist.{json,md}, rewritten after every finished row.
These are reduced-budget figures, not the paper's K=1000 setting.
"""
import datetime
import json
import os
import shutil
import time

import jax
from absl import app, flags, logging

import dcjax
from benchmarks.provenance import REPO_ROOT as ROOT
from benchmarks.provenance import markdown_line, provenance
from configs import cpu_protocol
from configs.common import PAPER_TABLE1
from dcjax import evaluation_report

_IPC = flags.DEFINE_multi_integer("ipc", [1, 10], "Images per class to run.")
_RUNS = flags.DEFINE_string("runs", os.path.join(ROOT, "runs"), "Where the condensation workdirs go.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results"), "Where results are written.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data", "fashion_mnist.npz"),
                                "The offline Fashion-MNIST (.npz or IDX directory); empty: tensorflow-datasets.")


def markdown(results: dict) -> str:
    lines = [
        "# Fashion-MNIST under the CPU protocol", "",
        "Reduced budget, NOT the paper's K=1000 setting. ConvNet-128 (instance norm) for condensing and "
        "evaluating, batch_real 64, init noise, metric 'ours'; evaluation: 5 fresh networks x 300 epochs "
        "(301 as the reference counts), no augmentation; random real images evaluated with the same "
        "network keys and recipe. Accuracy: mean +- std over the 5 networks.", "",
        f"Command: `{results['command']}`  ", markdown_line(results), f"Date: {results['date']}", "",
        "| ipc | K | dcjax test acc. % | random real % | paper (K=1000) % | condense wall s | dcjax eval s | random eval s | measured at |",
        "|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(results["rows"], key=lambda row: row["ipc"]):
        d, r = row["dcjax"], row["random"]
        lines.append(f"| {row['ipc']} | {row['K']} | {100 * d['mean']:.2f} +- {100 * d['std']:.2f} | "
                     f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f} | {row['paper']} | "
                     f"{row['condense_seconds']:.0f} | {d['seconds']:.0f} | {r['seconds']:.0f} | {_row_commit(row)} |")
    return "\n".join(lines) + "\n"


def _row_commit(row: dict) -> str:
    record = row.get("provenance") or {}
    if not record.get("commit"):
        return "before provenance"
    text = record["commit"][:7] + (" (dirty)" if record.get("dirty") else "")
    return text + (f", code {record['code']}" if record.get("code") else "")


def earlier_rows(path: str, ipcs: list) -> list:
    """Rows of an earlier results file for the ipc values not being run now: a run of one ipc
    replaces that row only (each row says where it was measured)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [row for row in json.load(f).get("rows", []) if row["ipc"] not in ipcs]


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    results = {"command": "python -m benchmarks.cpu_protocol " + " ".join(f"--ipc {i}" for i in _IPC.value),
               "provenance": provenance(), "backend": jax.default_backend(),
               "date": datetime.date.today().isoformat(),
               "rows": earlier_rows(os.path.join(_OUT.value, "cpu_protocol_fashion_mnist.json"), _IPC.value)}
    for ipc in _IPC.value:
        config = cpu_protocol.get_config(str(ipc))
        config.data_dir = _DATA_DIR.value or None
        config.eval.compare_random = True   # the same networks' keys and recipe on ipc random real images
        workdir = os.path.join(_RUNS.value, f"fmnist_cpu_ipc{ipc}")
        shutil.rmtree(workdir, ignore_errors=True)   # measure from scratch, never a resumed run
        t0 = time.time()
        summary = dcjax.evaluate_run(config, workdir, dcjax.condense(config, workdir))
        results["rows"].append({
            "ipc": ipc, "K": config.num_iterations, "dcjax": summary["evaluation"], "provenance": provenance(),
            "random": summary["random_real_evaluation"],
            "condense_seconds": summary["condense_seconds"],
            "run_seconds": round(time.time() - t0, 1), "paper": PAPER_TABLE1[("fashion_mnist", ipc)]})
        evaluation_report.write_results(_OUT.value, results, markdown(results), "cpu_protocol_fashion_mnist")
        print(markdown(results), flush=True)


if __name__ == "__main__":
    app.run(main)
