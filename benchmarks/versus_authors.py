"""dcjax beside the authors' real programs, each run end to end as a user runs it.

    python -m benchmarks.versus_authors --case=dc_ipc1 --case=dc_ipc10 [--name=versus_authors_cpu]

The authors' side is their main.py / main_DM.py at their checkout (`DCJAX_AUTHORS_REPO`, default
../DatasetCondensation), unchanged, started as a subprocess: `python main.py --dataset FashionMNIST
...`. It loads Fashion-MNIST itself through torchvision, offline: the harness writes the four IDX
files where torchvision's loader looks (<data>/FashionMNIST/raw/), from the same npz that dcjax's
side reads. dcjax's side is `python bin/condense.py --config=...` on that npz. Each side's
per-iteration times come from its own log (`benchmarks.program_logs`), its whole-run time from the
harness's clock around the process, its peak memory from the kernel's account of that process
(`os.wait4`). Results go to <out>/<name>.json and .md after every run.

Both programs start in a fresh process under the same environment, which the results record
(`PROCESS_ENVIRONMENT`): a timing harness that ran the authors' code inside a small fresh Python
process measured it ~1.6x slower than main.py (glibc's allocator served PyTorch's large temporaries
with mmap and returned them at once, so every step faulted their pages in again; main.py's heap,
grown by loading a whole dataset first, does not). docs/performance.md has the figures.

Cases (Fashion-MNIST, 28x28x1, ConvNet-128 on both sides; the only dataset both loaders can read
here without a download):
* dc_ipc1 / dc_ipc10: the CPU protocol whole (configs/cpu_protocol.py): K=200 / K=10 outer
  iterations, batch_real 64, init noise, then 5 networks x 300 epochs on the final set.
* dsa_ipc1 / dsa_ipc10: DSA as the authors' README runs it (init real, batch_real 256, all six
  ops), K=40, then `--num_eval` networks x 1000 epochs.
* dm_ipc1 / dm_ipc10 / dm_ipc50: main_DM.py's defaults (init real, lr_img 1, batch_real 256,
  DSA), K=40, then `--num_eval` networks x 1000 epochs.

main.py evaluates at iterations 0, 500, 1000, ... under its default `--eval_mode S`, so a K=200
run would evaluate only the noise it starts from. Any eval mode outside its list evaluates the
training model once, at the last iteration (the branch its multi-architecture modes take); the
harness passes `--eval_mode final`, which is that. main.py trains iterations 0..K, i.e. K+1 image
updates, the last after the evaluation; dcjax trains K. Whole runs include that extra iteration.

On grey-scale images their DSA and DM programs stop at the first 'crop' draw on CPU (torch 2.14):
the cropped batch of one channel has channels-last strides, the convolutions keep that layout and
ConvNet's `out.view(out.size(0), -1)` refuses it. For the dsa_* and dm_* cases the harness runs a
copy of their checkout whose networks.py says `reshape` there instead of `view` (`GREY_SCALE_PATCH`;
the same values, and the same work where the tensor is contiguous); the results say so.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any, Sequence

import numpy as np

from benchmarks import program_logs
from benchmarks.provenance import REPO_ROOT, markdown_line, provenance

REPO_ENV = "DCJAX_AUTHORS_REPO"
DEFAULT_AUTHORS_REPO = os.path.join(REPO_ROOT, "..", "DatasetCondensation")
DEFAULT_NPZ = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data", "fashion_mnist.npz"))
FINAL_ONLY_EVAL_MODE = "final"
DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
# Variables that change how either process allocates memory or how many threads it runs: each
# result records the ones that were set (none, for the committed figures).
PROCESS_ENVIRONMENT = ("LD_PRELOAD", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                       "MALLOC_ARENA_MAX", "PYTHONMALLOC", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")


# (file, pattern, replacement) that lets their DSA/DM programs run on one-channel images (above).
GREY_SCALE_PATCH = ("networks.py", r"(\w+)\.view\(\1\.size\(0\), -1\)", r"\1.reshape(\1.size(0), -1)")


@dataclasses.dataclass(frozen=True)
class Case:
    """One comparison: a method at an ipc, K outer iterations, then `num_eval` evaluation networks."""
    method: str        # dc | dsa | dm
    ipc: int
    iterations: int
    num_eval: int
    batch_real: int
    init: str

    @property
    def name(self) -> str:
        return f"{self.method}_ipc{self.ipc}"


CASES = {c.name: c for c in (
    Case("dc", 1, 200, 5, 64, "noise"), Case("dc", 10, 10, 5, 64, "noise"),
    Case("dsa", 1, 40, 1, 256, "real"), Case("dsa", 10, 40, 1, 256, "real"),
    Case("dm", 1, 40, 1, 256, "real"), Case("dm", 10, 40, 1, 256, "real"), Case("dm", 50, 40, 1, 256, "real"))}


def authors_repo() -> str:
    return os.path.abspath(os.environ.get(REPO_ENV, DEFAULT_AUTHORS_REPO))


def authors_checkout(case: Case, scratch: str) -> tuple[str, str | None]:
    """(the directory to run the authors' program in, the patch applied there or None): their
    checkout itself for DC; for DSA and DM a copy with `GREY_SCALE_PATCH` applied."""
    if case.method == "dc":
        return authors_repo(), None
    copy = os.path.join(scratch, "authors_patched")
    os.makedirs(copy, exist_ok=True)
    for name in os.listdir(authors_repo()):
        if name.endswith(".py"):
            shutil.copy(os.path.join(authors_repo(), name), copy)
    file, pattern, replacement = GREY_SCALE_PATCH
    path = os.path.join(copy, file)
    with open(path) as f:
        text, count = re.subn(pattern, replacement, f.read())
    with open(path, "w") as f:
        f.write(text)
    return copy, f"{file}: {count} x `x.view(x.size(0), -1)` -> `x.reshape(x.size(0), -1)` (runs on grey-scale images)"


def authors_command(case: Case, data_path: str, save_path: str, python: str = "python") -> list[str]:
    """The authors' command line for `case` (their script, their flag names)."""
    script = "main_DM.py" if case.method == "dm" else "main.py"
    argv = [python, script, "--dataset", "FashionMNIST", "--model", "ConvNet", "--ipc", str(case.ipc),
            "--Iteration", str(case.iterations), "--num_exp", "1", "--num_eval", str(case.num_eval),
            "--batch_real", str(case.batch_real), "--init", case.init, "--eval_mode", FINAL_ONLY_EVAL_MODE,
            "--data_path", data_path, "--save_path", save_path]
    if case.method == "dsa":
        argv += ["--method", "DSA", "--dsa_strategy", DSA_STRATEGY]
    return argv


def dcjax_command(case: Case, npz: str, workdir: str, python: str = "python") -> list[str]:
    """dcjax's command line for `case`: bin/condense.py with the config a user would pick."""
    if case.method == "dc":
        config = [f"--config=configs/cpu_protocol.py:{case.ipc}"]
    else:
        base = "configs/dm_cifar10_ipc50.py" if case.method == "dm" else "configs/dsa_cifar10_ipc10.py"
        config = [f"--config={base}", "--config.dataset=fashion_mnist", f"--config.ipc={case.ipc}",
                  f"--config.batch_real={case.batch_real}", f"--config.dsa_strategy={DSA_STRATEGY}",
                  "--config.log_every=10"]
    return [python, "bin/condense.py", *config, f"--config.num_iterations={case.iterations}",
            f"--config.eval.num_models={case.num_eval}", f"--config.data_dir={npz}", f"--workdir={workdir}"]


def write_idx(path: str, array: np.ndarray) -> None:
    """An uint8 array as an IDX file (the MNIST format: magic 0x08 0x<ndim>, big-endian sizes)."""
    array = np.ascontiguousarray(array, np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, array.ndim]))
        f.write(np.asarray(array.shape, ">u4").tobytes())
        f.write(array.tobytes())


def prepare_fashion_mnist(npz: str, data_path: str) -> str:
    """Lay the npz's Fashion-MNIST out as torchvision's FashionMNIST reads it offline
    (<data_path>/FashionMNIST/raw/*-ubyte); returns data_path."""
    raw = os.path.join(data_path, "FashionMNIST", "raw")
    os.makedirs(raw, exist_ok=True)
    with np.load(npz) as arrays:
        for split, prefix in (("train", "train"), ("test", "t10k")):
            x = arrays[f"x_{split}"]
            write_idx(os.path.join(raw, f"{prefix}-images-idx3-ubyte"), x.reshape(x.shape[0], 28, 28))
            write_idx(os.path.join(raw, f"{prefix}-labels-idx1-ubyte"), arrays[f"y_{split}"])
    return data_path


@dataclasses.dataclass
class ProcessRun:
    """What the harness saw of one process: its stamped output, wall seconds, peak RSS, exit code,
    and the share of the machine's CPU time the hypervisor gave to others meanwhile (steal)."""
    lines: list[program_logs.StampedLine]
    wall_s: float
    peak_rss_mb: float
    returncode: int
    steal: float | None = None


def cpu_times() -> list[int] | None:
    """The machine's cumulative CPU times (/proc/stat's first line: user .. steal), or None."""
    try:
        with open("/proc/stat") as f:
            return [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The fraction of CPU time stolen by the hypervisor between two `cpu_times()` readings: on a
    shared VM, the noise under a timing."""
    if not before or not after:
        return None
    spent = [b - a for a, b in zip(before, after)]
    return round(spent[7] / sum(spent), 4) if sum(spent) else None


def run_process(argv: Sequence[str], cwd: str, log_path: str) -> ProcessRun:
    """Run `argv` in `cwd`, stamping each output line as it arrives (stdout and stderr merged,
    Python unbuffered so lines arrive when printed); the log goes to `log_path` as '<s>\\t<text>'."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    times = cpu_times()
    start = time.monotonic()
    proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, errors="replace")
    lines = []
    with open(log_path, "w") as log:
        for text in proc.stdout:
            at = time.monotonic() - start
            lines.append((at, text.rstrip("\n")))
            log.write(f"{at:.3f}\t{text.rstrip(chr(10))}\n")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcessRun(lines, wall, usage.ru_maxrss / 1024, proc.returncode, steal_share(times, cpu_times()))


def _tail(lines: Sequence[program_logs.StampedLine], n: int = 15) -> str:
    return "\n".join(text for _, text in lines[-n:])


def authors_side(case: Case, run: ProcessRun) -> dict[str, Any]:
    """The authors' row: per-iteration seconds and evaluation networks from their log."""
    parsed = program_logs.parse_authors_log(run.lines)
    networks = [n for e in parsed["evaluations"] for n in e["networks"]]
    return {"per_iteration_s": program_logs.summarize(program_logs.authors_iteration_seconds(parsed)),
            "own_clock_per_iteration_s": program_logs.authors_own_clock_rate(parsed),
            "eval_network_s": [round(n["seconds"], 2) for n in networks],
            "accuracies": [n["test_acc"] for n in networks],
            "outer_updates": case.iterations + 1}


def dcjax_side(case: Case, workdir: str) -> dict[str, Any]:
    """dcjax's row: per-iteration seconds from metrics.jsonl, the evaluation from summary.json."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    first, later = program_logs.dcjax_iteration_seconds(records)
    row = {"first_iteration_s": first, "per_iteration_s": program_logs.summarize(later),
           "eval_network_s": [], "accuracies": [], "outer_updates": case.iterations}
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    if "evaluation" in summary:
        e = summary["evaluation"]
        # The networks train in one compiled program: its seconds (compilation included) per network.
        row["eval_network_s"] = [round(e["seconds"] / e["num_models"], 2)] * e["num_models"]
        row["accuracies"] = e["accuracies"]
    return row


def run_case(case: Case, side: str, scratch: str, npz: str, data_path: str) -> dict[str, Any]:
    """Run one side of `case` in a fresh process and read its logs; raises on a failed run."""
    where = os.path.join(scratch, f"{case.name}_{side}")
    shutil.rmtree(where, ignore_errors=True)
    os.makedirs(where)
    patch = None
    if side == "authors":
        cwd, patch = authors_checkout(case, scratch)
        argv = authors_command(case, data_path, where)
    else:
        argv, cwd = dcjax_command(case, npz, os.path.join(where, "workdir")), REPO_ROOT
    run = run_process([sys.executable] + argv[1:], cwd, os.path.join(where, "output.log"))
    if run.returncode != 0:
        raise RuntimeError(f"{side} run of {case.name} exited {run.returncode}:\n{_tail(run.lines)}")
    row = authors_side(case, run) if side == "authors" else dcjax_side(case, os.path.join(where, "workdir"))
    shown = " ".join(argv).replace(REPO_ROOT + os.sep, "<repo>/")   # the same command on any checkout
    return {"case": case.name, "side": side, "command": shown, "cwd": os.path.relpath(cwd, REPO_ROOT), "patch": patch,
            "wall_s": round(run.wall_s, 2), "peak_rss_mb": round(run.peak_rss_mb), "steal": run.steal, **row,
            "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def authors_description() -> dict[str, Any]:
    """The authors' commit and the torch / torchvision builds their programs run on."""
    repo = authors_repo()
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True)
    versions = subprocess.run([sys.executable, "-c", "import torch, torchvision; print(torch.__version__, "
                               "torchvision.__version__, torch.get_num_threads())"], capture_output=True, text=True)
    torch_version, torchvision_version, threads = (versions.stdout.split() + ["?"] * 3)[:3]
    return {"authors_commit": commit.stdout.strip() or None, "torch": torch_version,
            "torchvision": torchvision_version, "torch_threads": threads}


def process_environment() -> dict[str, str]:
    return {name: os.environ[name] for name in PROCESS_ENVIRONMENT if name in os.environ}


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ratio(authors: float | None, ours: float | None) -> str:
    return "-" if not authors or not ours else f"{authors / ours:.2f}x"


def case_summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per side, medians over repeats: per-iteration seconds, seconds per evaluation network,
    whole-run seconds, peak RSS, accuracy."""
    out = {}
    for side in ("authors", "dcjax"):
        mine = [r for r in rows if r["side"] == side]
        if not mine:
            continue
        accuracies = [a for r in mine for a in r["accuracies"]]
        out[side] = {
            "per_iteration_s": _median([r["per_iteration_s"]["median"] for r in mine if r["per_iteration_s"]]),
            "eval_network_s": _median([s for r in mine for s in r["eval_network_s"]]),
            "wall_s": _median([r["wall_s"] for r in mine]), "peak_rss_mb": max(r["peak_rss_mb"] for r in mine),
            "accuracy": (100 * float(np.mean(accuracies)), 100 * float(np.std(accuracies))) if accuracies else None,
            "steal": max((r.get("steal") or 0.0) for r in mine), "runs": len(mine)}
    return out


def markdown(report: dict[str, Any]) -> str:
    """The report's table: per case, each side's medians and the authors' time over dcjax's."""
    a = report["authors"]
    lines = [
        "# dcjax beside the authors' programs (main.py, main_DM.py), each run whole", "",
        "Fashion-MNIST (28x28x1), ConvNet-128 on both sides. Each side is its real command, started as a fresh "
        "process on an idle machine, one run at a time: the authors' main.py / main_DM.py unchanged "
        f"(commit {str(a.get('authors_commit'))[:7]}, torch {a.get('torch')}, torchvision {a.get('torchvision')}, "
        f"{a.get('torch_threads')} threads) loading the data itself, and dcjax's bin/condense.py. Per-iteration "
        "seconds from each program's own log (main.py's `iter =` lines, every 10 iterations, stamped as they "
        "arrive; dcjax's metrics.jsonl, its first, compiling iteration left out); an evaluation network from "
        "main.py's `Evaluate_` lines and from dcjax's summary.json (its networks train in one program: seconds "
        "per network, compilation included); whole run = the process's wall time, data loading and (dcjax) "
        "compilation and checkpoints included; peak RSS from the kernel (wait4). Ratios: the authors' time "
        "over dcjax's (above 1: dcjax faster). Medians over runs. Steal: the largest share of CPU time the "
        "hypervisor gave to other machines during a run (this VM's neighbours; a few % moves timings by more).", "",
        f"Command: `{report['command']}`  ", markdown_line(report),
        f"Process environment: {report['process_environment'] or 'no allocator or thread variable set'}", "",
        "| case | K | side | s / iteration | s / eval network | whole run s | peak RSS MB | test acc. % | steal | runs |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for name, case in CASES.items():
        rows = [r for r in report["rows"] if r["case"] == name]
        if not rows:
            continue
        summary = case_summary(rows)
        for side in ("authors", "dcjax"):
            if side not in summary:
                continue
            s = summary[side]
            acc = "-" if s["accuracy"] is None else f"{s['accuracy'][0]:.2f} +- {s['accuracy'][1]:.2f}"
            lines.append(f"| {name} | {rows[0]['iterations']} | {side} | {_fmt(s['per_iteration_s'], 3)} | "
                         f"{_fmt(s['eval_network_s'], 1)} | {_fmt(s['wall_s'], 0)} | {s['peak_rss_mb']:.0f} | {acc} | "
                         f"{'-' if not s['steal'] else format(s['steal'], '.1%')} | {s['runs']} |")
        if len(summary) == 2:
            t, d = summary["authors"], summary["dcjax"]
            lines.append(f"| {name} | | **authors / dcjax** | **{_ratio(t['per_iteration_s'], d['per_iteration_s'])}** | "
                         f"**{_ratio(t['eval_network_s'], d['eval_network_s'])}** | **{_ratio(t['wall_s'], d['wall_s'])}**"
                         f" | {_ratio(t['peak_rss_mb'], d['peak_rss_mb'])} | | | |")
    lines += ["", "Commands, one per side and case, and the dcjax commit each was run at:", ""]
    seen = set()
    for row in report["rows"]:
        if (row["case"], row["side"]) not in seen:
            seen.add((row["case"], row["side"]))
            patch = f"; their code patched: {row['patch']}" if row.get("patch") else ""
            commits = sorted({_commit(r) for r in report["rows"] if r["case"] == row["case"]})
            lines.append(f"- {row['case']}, {row['side']} (in `{row['cwd']}`{patch}; at {', '.join(commits)}): "
                         f"`{row['command']}`")
    return "\n".join(lines) + "\n"


def _commit(row: dict[str, Any]) -> str:
    """A row's dcjax commit, short, '+ changes' when the tree was dirty ('?' for rows without one)."""
    if not row.get("commit"):
        return "?"
    return row["commit"][:7] + (" + uncommitted changes" if row.get("dirty") else "")


def write(report: dict[str, Any], out: str, name: str) -> tuple[str, str]:
    os.makedirs(out, exist_ok=True)
    json_path, md_path = os.path.join(out, f"{name}.json"), os.path.join(out, f"{name}.md")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=1)
    with open(md_path, "w") as f:
        f.write(markdown(report))
    return json_path, md_path


def main(argv: Sequence[str] | None = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="cases to run (repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side and case, sides alternating first")
    parser.add_argument("--num_eval", type=int, default=None, help="evaluation networks (default: the case's)")
    parser.add_argument("--iterations", type=int, default=None, help="K (default: the case's)")
    parser.add_argument("--npz", default=DEFAULT_NPZ, help="Fashion-MNIST as an npz (x_train, y_train, x_test, y_test)")
    parser.add_argument("--scratch", default=os.path.join(REPO_ROOT, "runs", "versus_authors"))
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "benchmarks", "results"))
    parser.add_argument("--name", default="versus_authors_cpu")
    parser.add_argument("--append", action="store_true", help="add to an existing report of that name")
    args = parser.parse_args(argv)
    for needed in (os.path.join(authors_repo(), "main.py"), args.npz):
        if not os.path.exists(needed):
            parser.error(f"{needed} not found: set {REPO_ENV} to a checkout of the authors' repository "
                         "and --npz to an offline Fashion-MNIST")
    command = "python -m benchmarks.versus_authors " + " ".join(argv if argv is not None else sys.argv[1:])
    data_path = prepare_fashion_mnist(args.npz, os.path.join(args.scratch, "data"))
    json_path = os.path.join(args.out, f"{args.name}.json")
    if args.append and os.path.exists(json_path):
        with open(json_path) as f:
            report = json.load(f)
        report["command"] += f"; {command}"
    else:
        report = {"command": command, "provenance": provenance(), "authors": authors_description(),
                  "process_environment": process_environment(), "rows": []}
    for name in args.case or ["dc_ipc1"]:
        case = CASES[name]
        case = dataclasses.replace(case, num_eval=case.num_eval if args.num_eval is None else args.num_eval,
                                   iterations=case.iterations if args.iterations is None else args.iterations)
        for repeat in range(args.repeats):
            sides = ("authors", "dcjax") if repeat % 2 == 0 else ("dcjax", "authors")
            for side in sides:
                at = provenance()   # a report may gather runs of several commits (--append)
                row = run_case(case, side, args.scratch, args.npz, data_path)
                row.update(repeat=repeat, iterations=case.iterations, num_eval=case.num_eval,
                           commit=at["commit"], dirty=at["dirty"])
                report["rows"].append(row)
                write(report, args.out, args.name)
                print(f"{name} {side}: whole run {row['wall_s']:.0f} s, per iteration "
                      f"{_fmt((row['per_iteration_s'] or {}).get('median'), 3)} s", flush=True)
    print("wrote", *write(report, args.out, args.name))


if __name__ == "__main__":
    main()
