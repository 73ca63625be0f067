"""DSA and DM under the CPU protocol on Fashion-MNIST, beside DC (issue 16).

    python -m benchmarks.methods_cpu --run dsa:1 --run dm:1 --run dm:10      (from the repository root)

Every run is configs/cpu_protocol.py (ConvNet-128, batch_real 64, evaluation 5 networks x 300
epochs without augmentation, the same network keys as the DC and random rows of
benchmarks/results/cpu_protocol_fashion_mnist.json) with the method changed:

* dsa: DC's loops and K (ipc 1: K=200), init noise as DC's row, plus DSA's Siamese augmentation
  (color_crop_cutout_flip_scale_rotate) while matching and in the inner network updates.
* dm: distribution matching with the authors' method defaults (init real, lr_img 1.0, the same DSA
  strategy while matching) at a reduced K (DM_ITERATIONS; theirs is 20 000). Its start is the
  protocol's random-real set (same init key; checked here), so the random row is DM's K=0 figure.

Each set is also evaluated with its method's own recipe (1000 epochs with DSA's DiffAugment, as the
authors evaluate DSA and DM) where `--own_recipe method:ipc` names it. Results go to
benchmarks/results/methods_cpu_fashion_mnist.{json,md}, rewritten after every row; a run of one
(method, ipc) replaces that row only.
"""
import datetime
import json
import os
import shutil

import numpy as np
from absl import app, flags, logging

import dcjax
from benchmarks.provenance import REPO_ROOT as ROOT
from benchmarks.provenance import markdown_line, provenance
from configs import cpu_protocol
from configs.common import DM_CIFAR10, DSA_TABLE, PAPER_TABLE1
from dcjax import condensation, data, evaluation_report
from dcjax.apps.ranking import percent
from dcjax.baselines import random_real
from dcjax.configuration import root_keys

STRATEGY = "color_crop_cutout_flip_scale_rotate"
DM_ITERATIONS = {1: 200, 10: 100}   # the CPU budget; the authors run 20 000
NAME = "methods_cpu_fashion_mnist"

_RUN = flags.DEFINE_multi_string("run", ["dsa:1", "dm:1", "dm:10"], "method:ipc pairs to run (dsa or dm).")
_OWN = flags.DEFINE_multi_string("own_recipe", [], "method:ipc pairs whose sets are also evaluated with the "
                                 "methods' own recipe (1000 epochs with DSA augmentation; about 3x the protocol's time).")
_RUNS = flags.DEFINE_string("runs", os.path.join(ROOT, "runs"), "Where the condensation workdirs go.")
_OUT = flags.DEFINE_string("out", os.path.join(ROOT, "benchmarks", "results"), "Where results are written.")
_DATA_DIR = flags.DEFINE_string("data_dir", os.path.join(ROOT, "..", "shared", "data", "fashion_mnist.npz"),
                                "The offline Fashion-MNIST (.npz or IDX directory); empty: tensorflow-datasets.")


def method_config(method: str, ipc: int):
    """configs/cpu_protocol.py with the method changed, as the module docstring says."""
    config = cpu_protocol.get_config(str(ipc))
    config.data_dir = _DATA_DIR.value or None
    config.method = method
    config.dsa_strategy = STRATEGY
    if method == "dm":
        config.init, config.lr_img = "real", 1.0
        config.num_iterations = DM_ITERATIONS.get(ipc, 100)
        config.checkpoint_every = 50
        config.log_every = 10
    return config


def check_dm_starts_from_the_random_row(config, dataset) -> None:
    """DM's initial images are the protocol's random-real set (the same init key), so that set's
    evaluation is DM's figure at K=0."""
    start = np.asarray(condensation.initial_images(config, dataset, root_keys(config.seed)["init"]))
    baseline = random_real(dataset, config.ipc, root_keys(config.seed)["init"])
    np.testing.assert_array_equal(start.reshape(baseline.images.shape), np.asarray(baseline.images))


def dc_rows() -> dict:
    """{ipc: row} of the committed CPU-protocol results (DC and random real, same network keys)."""
    path = os.path.join(_OUT.value, "cpu_protocol_fashion_mnist.json")
    with open(path) as f:
        return {row["ipc"]: row for row in json.load(f)["rows"]}


def markdown(results: dict) -> str:
    lines = [
        "# DSA and DM under the CPU protocol (Fashion-MNIST)", "",
        "Reduced budget, NOT the authors' settings (they run K=1000 for DSA and K=20 000 for DM, batch_real 256, "
        "and evaluate with DSA augmentation for 1000 epochs). configs/cpu_protocol.py with the method changed: "
        "ConvNet-128 (instance norm), batch_real 64; DSA strategy color_crop_cutout_flip_scale_rotate while "
        "matching; DSA: init noise and DC's loops and K, as the DC row; DM: init real, lr_img 1.0. "
        "'protocol' = 5 networks x 300 epochs without augmentation, the same network keys as the DC and random "
        "rows; 'own recipe' = 1000 epochs with DSA augmentation. DM starts from the random row's images "
        "(same key), so that row is DM at K=0. Accuracy: mean +- std over the 5 networks.", "",
        f"Command: `{results['command']}`  ", markdown_line(results), f"Date: {results['date']}", "",
        "| method | ipc | K | protocol % | own recipe % | DC (same protocol) % | random real % | condense s | "
        "s per iteration | authors (full budget) % | measured at |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in sorted(results["rows"], key=lambda row: (row["method"], row["ipc"])):
        dc = row.get("dc") or {}
        lines.append(
            f"| {row['method'].upper()} | {row['ipc']} | {row['K']} | {percent(row['protocol'])} | "
            f"{percent(row.get('own_recipe'))} | {percent(dc.get('dcjax'))} (K={dc.get('K', '-')}) | "
            f"{percent(dc.get('random'))} | {row['condense_seconds']:.0f} | "
            f"{row['condense_seconds'] / row['K']:.2f} | {row['authors']} | {row['provenance']['commit'][:7]} |")
    lines += ["", "Authors' figures: DSA and DM READMEs of VICO-UoE/DatasetCondensation (DSA Fashion-MNIST "
              f"{DSA_TABLE['fashion_mnist']}; DM reports CIFAR-10 only, {DM_CIFAR10}; DC paper Fashion-MNIST "
              f"{PAPER_TABLE1[('fashion_mnist', 1)]} / {PAPER_TABLE1[('fashion_mnist', 10)]} at ipc 1 / 10). "
              "'s per iteration' includes checkpoints and the progress log; the DC row's protocol figures "
              "are those committed in cpu_protocol_fashion_mnist.md (its own commit)."]
    return "\n".join(lines) + "\n"


def authors_figure(method: str, ipc: int) -> str:
    if method == "dsa":
        figures = dict(zip((1, 10, 50), DSA_TABLE["fashion_mnist"].split(" / ")))
        return figures.get(ipc, f"- (none at ipc {ipc})")
    return "- (DM reports no Fashion-MNIST)"


def parse_runs(pairs: list[str]) -> list[tuple[str, int]]:
    """`--run` values as (method, ipc); a usage error naming the bad one, before anything runs."""
    runs = []
    for pair in pairs:
        method, _, ipc = pair.partition(":")
        if method not in ("dsa", "dm") or not ipc.isdigit() or int(ipc) < 1:
            raise app.UsageError(f"--run takes method:ipc with method dsa or dm and ipc >= 1, got {pair!r}")
        runs.append((method, int(ipc)))
    return runs


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    runs, own_recipe = parse_runs(_RUN.value), parse_runs(_OWN.value)
    path = os.path.join(_OUT.value, NAME + ".json")
    earlier = []
    if os.path.exists(path):
        with open(path) as f:
            earlier = [row for row in json.load(f)["rows"] if (row["method"], row["ipc"]) not in runs]
    results = {"command": "python -m benchmarks.methods_cpu " + " ".join(f"--run {m}:{i}" for m, i in runs)
               + "".join(f" --own_recipe {pair}" for pair in _OWN.value),
               "provenance": provenance(), "date": datetime.date.today().isoformat(), "rows": earlier}
    reference = dc_rows()
    for method, ipc in runs:
        config = method_config(method, ipc)
        if method == "dm":
            check_dm_starts_from_the_random_row(config, data.load(config.dataset, data_dir=config.data_dir))
        workdir = os.path.join(_RUNS.value, f"fmnist_cpu_{method}_ipc{ipc}")
        shutil.rmtree(workdir, ignore_errors=True)   # measure from scratch, never a resumed run
        synset = dcjax.condense(config, workdir)
        summary = dcjax.evaluate_run(config, workdir, synset)
        row = {"method": method, "ipc": ipc, "K": config.num_iterations, "protocol": summary["evaluation"],
               "condense_seconds": summary["condense_seconds"], "dc": reference.get(ipc),
               "authors": authors_figure(method, ipc), "provenance": provenance()}
        if (method, ipc) in own_recipe:
            own = evaluation_report.evaluate_saved(workdir, ["ConvNet"], 5, {"epochs": 1000,
                                                   "augmentation": f"dsa:{STRATEGY}"}, data_dir=config.data_dir,
                                                   out_dir=os.path.join(workdir, "own_recipe"))
            row["own_recipe"] = own["results"][0]
        results["rows"].append(row)
        evaluation_report.write_results(_OUT.value, results, markdown(results), NAME)
        print(markdown(results), flush=True)


if __name__ == "__main__":
    app.run(main)
