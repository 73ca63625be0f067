#!/usr/bin/env python
"""SPEC section 6's CPU protocol on Fashion-MNIST: dcjax against random real images, same evaluation.

    python benchmarks/cpu_protocol.py --ipc 1 --ipc 10

Condenses with configs/cpu_protocol.py (ipc 1: K=200; ipc 10: K=10; batch_real 64; ConvNet-128;
init noise; metric 'ours'), evaluates 5 fresh ConvNets x 300 epochs without augmentation, and
evaluates `ipc` random real images per class with the same networks' keys and recipe. Results go
to benchmarks/results/cpu_protocol_fashion_mnist.{json,md}, rewritten after every finished row.
These are reduced-budget figures, not the paper's K=1000 setting.
"""
import datetime
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from absl import app, flags, logging  # noqa: E402

import dcjax  # noqa: E402
from configs import cpu_protocol  # noqa: E402
from dcjax import data  # noqa: E402
from dcjax.support import run_log  # noqa: E402
from dcjax.condensation import model_from_config  # noqa: E402

_IPC = flags.DEFINE_multi_integer("ipc", [1, 10], "Images per class to run.")
_RUNS = flags.DEFINE_string("runs", os.path.join(ROOT, "runs"), "Where the condensation workdirs go.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results"), "Where results are written.")


def machine() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    import jax
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "jax": jax.__version__, "backend": jax.default_backend(),
            "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                     capture_output=True, text=True).stdout.strip()}


def random_row(config, ipc: int) -> dict:
    """ipc random real images per class, evaluated exactly as the condensed set will be."""
    dataset = data.load(config.dataset, config.data_dir, config.data_source)
    module = model_from_config(config, dataset.num_classes, dataset.image_shape)
    log = run_log.RunLog(os.path.join(_RUNS.value, f"random_fmnist_ipc{ipc}"), config, dataset)
    return run_log.random_real_evaluation(log, module)


def markdown(results: dict) -> str:
    lines = [
        "# Fashion-MNIST under the CPU protocol (SPEC section 6)", "",
        "Reduced budget, NOT the paper's K=1000 setting. ConvNet-128 (instance norm) for condensing and "
        "evaluating, batch_real 64, init noise, metric 'ours'; evaluation: 5 fresh networks x 300 epochs "
        "(301 as the reference counts), no augmentation; random real images evaluated with the same "
        "network keys and recipe. Accuracy: mean +- std over the 5 networks.", "",
        f"Command: `{results['command']}`  ", f"Machine: {results['machine']}  ", f"Date: {results['date']}", "",
        "| ipc | K | dcjax test acc. % | random real % | paper (K=1000) % | condense wall s | dcjax eval s | random eval s |",
        "|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        d, r = row["dcjax"], row["random"]
        lines.append(f"| {row['ipc']} | {row['K']} | {100 * d['mean']:.2f} +- {100 * d['std']:.2f} | "
                     f"{100 * r['mean']:.2f} +- {100 * r['std']:.2f} | {row['paper']} | "
                     f"{row['condense_seconds']:.0f} | {d['seconds']:.0f} | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    os.makedirs(_OUT.value, exist_ok=True)
    results = {"command": "python benchmarks/cpu_protocol.py " + " ".join(f"--ipc {i}" for i in _IPC.value),
               "machine": machine(), "date": datetime.date.today().isoformat(), "rows": []}
    for ipc in _IPC.value:
        config = cpu_protocol.get_config(str(ipc))
        random_result = random_row(config, ipc)
        print(f"ipc {ipc}: random real {100 * random_result['mean']:.2f} +- {100 * random_result['std']:.2f}", flush=True)
        t0 = time.time()
        summary = dcjax.run(config, os.path.join(_RUNS.value, f"fmnist_cpu_ipc{ipc}"))
        from configs.common import PAPER_TABLE1
        results["rows"].append({
            "ipc": ipc, "K": config.num_iterations, "dcjax": summary["evaluation"], "random": random_result,
            "condense_seconds": summary["condense_seconds"],
            "run_seconds": round(time.time() - t0, 1), "paper": PAPER_TABLE1[("fashion_mnist", ipc)]})
        base = os.path.join(_OUT.value, "cpu_protocol_fashion_mnist")
        with open(base + ".json", "w") as f:
            json.dump(results, f, indent=2)
        with open(base + ".md", "w") as f:
            f.write(markdown(results))
        print(markdown(results), flush=True)


if __name__ == "__main__":
    app.run(main)
