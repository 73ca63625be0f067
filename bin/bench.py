#!/usr/bin/env python
"""Measure dcjax's speed and memory:
python bin/bench.py [--quick | --devices | --classes | --methods | --only=eval]

Runs the suite of benchmarks.bench_report (matching steps, inner updates, outer iterations,
evaluation, CIFAR-100 memory), one fresh process per case, and writes <out>/<name>.json and .md
after every case. dcjax beside the authors' programs is `python -m benchmarks.versus_authors`
(docs/performance.md). Run it on an otherwise idle machine: it is a benchmark, not a test.
"""
import sys

import _common  # noqa: F401  (puts the repository root on sys.path)
from absl import app, flags

from benchmarks import bench_report

_OUT = flags.DEFINE_string("out", "benchmarks/results", "Directory for the JSON and Markdown tables.")
_NAME = flags.DEFINE_string("name", None, "File name stem (default: bench_<backend>, or bench_quick).")
_QUICK = flags.DEFINE_bool("quick", False, "One small case of each kind (a smoke run, minutes).")
_ONLY = flags.DEFINE_list("only", None, "Run only the default suite's cases of these kinds (e.g. eval,outer).")
_DEVICES = flags.DEFINE_bool("devices", False, "Only the outer iteration on 1, 2, 4, 8 simulated CPU devices.")
_CLASSES = flags.DEFINE_bool("classes", False, "Only classes unrolled against mapped (10 and 100 classes).")
_METHODS = flags.DEFINE_bool("methods", False, "Only one outer iteration of DC, DSA and DM (ipc 1; DM also 10, 50).")
_TIMEOUT = flags.DEFINE_float("case_timeout", 1800, "Seconds after which one case is abandoned.")


def main(argv):
    del argv
    import jax
    command = "python " + " ".join(sys.argv)
    if _DEVICES.value:
        name = _NAME.value or f"bench_{jax.default_backend()}_devices"
        cases = bench_report.devices_suite()
    elif _CLASSES.value:
        name = _NAME.value or f"bench_{jax.default_backend()}_classes"
        cases = bench_report.classes_suite()
    elif _METHODS.value:
        name = _NAME.value or f"bench_{jax.default_backend()}_methods"
        cases = bench_report.methods_suite()
    else:
        name = _NAME.value or ("bench_quick" if _QUICK.value else f"bench_{jax.default_backend()}")
        cases = bench_report.default_suite(_QUICK.value)
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
