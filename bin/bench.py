#!/usr/bin/env python
"""Measure dcjax's speed and memory:
python bin/bench.py [--quick | --devices | --classes | --methods | --authors | --only=eval]

Runs the suite of benchmarks.bench_report (matching steps, inner updates, outer iterations,
evaluation, CIFAR-100 memory, and the authors' PyTorch matching step when torch and their checkout are
there: benchmarks/authors_code.py), one fresh process per case, and writes <out>/<name>.json and .md
after every case. `--authors` sets dcjax beside the authors' code part by part at the CPU protocol's
settings and adds up whole runs. Run it on an otherwise idle machine: it is a benchmark, not a test.
"""
import sys

import _common  # noqa: F401  (puts the repository root on sys.path)
from absl import app, flags

from benchmarks import bench_report
from dcjax.nets.convolution import CONV_IMPLS

_OUT = flags.DEFINE_string("out", "benchmarks/results", "Directory for the JSON and Markdown tables.")
_NAME = flags.DEFINE_string("name", None, "File name stem (default: bench_<backend>, or bench_quick).")
_QUICK = flags.DEFINE_bool("quick", False, "One small case of each kind (a smoke run, minutes).")
_ONLY = flags.DEFINE_list("only", None, "Run only the default suite's cases of these kinds (e.g. eval,outer).")
_DEVICES = flags.DEFINE_bool("devices", False, "Only the outer iteration on 1, 2, 4, 8 simulated CPU devices.")
_CLASSES = flags.DEFINE_bool("classes", False, "Only classes unrolled against mapped (10 and 100 classes).")
_METHODS = flags.DEFINE_bool("methods", False, "Only one outer iteration of DC, DSA and DM (ipc 1; DM also 10, 50).")
_AUTHORS = flags.DEFINE_bool("authors", False, "Only dcjax beside the authors' PyTorch code, part by part and whole runs.")
_TORCH = flags.DEFINE_bool("torch", True, "Include the authors' PyTorch step if torch and their checkout are there.")
_TIMEOUT = flags.DEFINE_float("case_timeout", 1800, "Seconds after which one case is abandoned.")
_CONV_IMPL = flags.DEFINE_enum("conv_impl", "matmul_grad", list(CONV_IMPLS),
                               "With --authors: the convolution form of dcjax's networks (config net.conv_impl).")


def main(argv):
    del argv
    import jax
    command = "python " + " ".join(sys.argv)
    if _DEVICES.value:
        name = _NAME.value or f"bench_{jax.default_backend()}_devices"
        cases = bench_report.devices_suite()
    elif _AUTHORS.value:
        from benchmarks import authors_code
        if not bench_report.torch_available():
            raise app.UsageError(f"--authors needs torch (pip install torch==2.13.0) and the authors' code at "
                                 f"{authors_code.repo_path()} (git clone https://github.com/VICO-UoE/DatasetCondensation "
                                 f"there, or set {authors_code.REPO_ENV})")
        name = _NAME.value or f"bench_{jax.default_backend()}_authors"
        cases = bench_report.authors_suite(_CONV_IMPL.value)
    elif _CLASSES.value:
        name = _NAME.value or f"bench_{jax.default_backend()}_classes"
        cases = bench_report.classes_suite()
    elif _METHODS.value:
        name = _NAME.value or f"bench_{jax.default_backend()}_methods"
        cases = bench_report.methods_suite()
    else:
        name = _NAME.value or ("bench_quick" if _QUICK.value else f"bench_{jax.default_backend()}")
        cases = bench_report.default_suite(_TORCH.value and bench_report.torch_available(), _QUICK.value)
        if _ONLY.value:
            cases = [c for c in cases if c.kind in _ONLY.value]
            name = _NAME.value or f"{name}_{'_'.join(_ONLY.value)}"

    def progress(report):
        row = report["rows"][-1]
        result = row["result"]
        print(f"[{len(report['rows'])}/{len(cases)}] {row['case']['kind']} {row['case']['label']}: "
              + (result["error"] if "error" in result else f"{result.get('median_s', '-')} s"), flush=True)
        bench_report.write(report, _OUT.value, name, command)

    report = bench_report.run_suite(cases, progress, _TIMEOUT.value)
    json_path, md_path = bench_report.write(report, _OUT.value, name, command)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    app.run(main)
