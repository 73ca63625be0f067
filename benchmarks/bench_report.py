"""The benchmark suite `bin/bench.py` runs, and its JSON and Markdown report.

Every row is one `benchmarks.benchmark.Case` measured in its own process. The suite is chosen for the
questions users and the performance issue ask: how fast is a matching step at the paper's settings
(and which formulation is fastest), what do inner updates, whole outer iterations and evaluations
cost, and how much memory does CIFAR-100 (100 classes x 256 real images) need. dcjax beside the
authors' programs is `benchmarks.versus_authors`, which runs their main.py whole. The report records where it was measured
(`benchmarks.provenance`: commit, uncommitted changes, machine) when the suite starts.
"""
from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Callable, Iterable

from benchmarks.benchmark import Case, machine_description, run_in_subprocess
from benchmarks.provenance import markdown_line, provenance
from dcjax.evaluation_report import write_results

MNIST, CIFAR = (28, 28, 1), (32, 32, 3)


def default_suite(quick: bool = False) -> list[Case]:
    """The cases of the committed table; `quick` keeps one of each kind (for a smoke run)."""
    if quick:
        return [Case("peak"), Case("matching", "dcjax default", batch_real=16, repeats=1),
                Case("inner", "ipc 10", ipc=10, repeats=1),
                Case("eval", "map", ipc=2, num_models=2, epochs=1, mode="map", repeats=1)]
    cases = [Case("peak")]
    for batch in (64, 256):
        cases += [
            Case("matching", "dcjax CPU default: classes unrolled, matmul weight grad", batch_real=batch),
            Case("matching", "same, XLA's default scheduler", batch_real=batch, scheduler="default"),
            Case("matching", "classes vmapped", batch_real=batch, mode="vmap"),
            Case("matching", "classes vmapped, 2 at a time (class_chunk 2)", batch_real=batch, mode="vmap",
                 class_chunk=2),
            Case("matching", "lax.map over classes (class_chunk 1)", batch_real=batch, mode="vmap", class_chunk=1),
        ]
        if batch == 64:   # the naive formulation is far slower; one batch size shows it
            cases += [Case("matching", "naive: classes unrolled, lax.conv gradients", batch_real=batch,
                           conv_impl="xla", scheduler="default"),
                      Case("matching", "naive: classes vmapped, lax.conv gradients", batch_real=batch,
                           conv_impl="xla", mode="vmap", scheduler="default", repeats=1)]
    for image in (MNIST, CIFAR):
        for ipc in (1, 10, 50):
            if image == MNIST and ipc == 1:
                continue   # already above
            cases.append(Case("matching", "dcjax CPU default", image=image, ipc=ipc))
    cases += [Case("inner", "ipc 10 (50 SGD steps)", ipc=10), Case("inner", "ipc 50 (20 SGD steps)", ipc=50),
              Case("outer", "ipc 1", ipc=1), Case("outer", "ipc 10", ipc=10, repeats=1)]
    for mode in ("vmap", "map", "sequential"):
        cases.append(Case("eval", mode, ipc=10, num_models=20, epochs=4, mode=mode, repeats=1))
    for chunk in (None, 25, 10):
        cases.append(Case("matching", f"CIFAR-100, classes vmapped, class_chunk {chunk}", classes=100,
                          image=CIFAR, mode="vmap", class_chunk=chunk, compile_only=True))
    cases.append(Case("outer", "CIFAR-100 ipc 10, classes vmapped, class_chunk 10", classes=100, image=CIFAR,
                      ipc=10, mode="vmap", class_chunk=10, compile_only=True))
    return cases


def devices_suite() -> list[Case]:
    """One outer iteration (ipc 1, 10 classes, Fashion-MNIST shapes) on 1, 2, 4 and 8 simulated CPU devices.

    Simulated devices share the same physical cores, so on a CPU this measures the overhead of the
    sharded program (partitioning, collectives, 8 devices: 6 padding classes), not a speed-up.
    """
    return [Case("outer", f"{d} simulated device{'s' * (d > 1)}", ipc=1, devices=d) for d in (1, 2, 4, 8)]


def classes_suite() -> list[Case]:
    """The classes unrolled against one at a time in a `lax.map` on CPU (`class_parallel` 'unroll' and
    'map'), what `class_parallel='auto'`'s CPU rule rests on (`dcjax.matching.resolve_class_parallel`):
    the matching step of 10 classes (28x28x1 at batch_real 64, 32x32x3 at 64 and 256), and one ipc-1
    outer iteration of CIFAR-100's 100 classes at the paper's batch_real 256 (compilation time and
    peak memory included).
    """
    cases = [Case("matching", f"10 classes, {mode}", image=image, batch_real=batch, mode=mode)
             for image, batch in ((MNIST, 64), (CIFAR, 64), (CIFAR, 256)) for mode in ("unroll", "map")]
    return cases + [Case("outer", f"CIFAR-100 ipc 1, {mode}", classes=100, image=CIFAR, ipc=1, mode=mode, repeats=1)
                    for mode in ("unroll", "map")]


def methods_suite() -> list[Case]:
    """One outer iteration of each method (DC, DSA, DM; paper settings, batch_real 256, 10 classes,
    Fashion-MNIST shapes) at ipc 1, and DM's at ipc 10 and 50.

    DC's and DSA's ipc-10 iterations (10 inner epochs of 50 SGD steps each) take minutes on a CPU, so
    the comparison is made at ipc 1; DM has no inner loop and its cost grows only with the images.
    """
    return ([Case("outer", f"{method.upper()}, ipc 1", ipc=1, method=method) for method in ("dc", "dsa", "dm")]
            + [Case("outer", f"DM, ipc {ipc}", ipc=ipc, method="dm") for ipc in (10, 50)])


def run_suite(cases: Iterable[Case], on_result: Callable[[dict[str, Any]], None] | None = None,
              timeout_s: float | None = None) -> dict[str, Any]:
    """Measure every case (one process each); `on_result(report)` after each row."""
    report: dict[str, Any] = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
                              "provenance": provenance(), "machine": machine_description(), "rows": []}
    for case in cases:
        row = {"case": dataclasses.asdict(case), "result": run_in_subprocess(case, timeout_s)}
        report["rows"].append(row)
        if on_result is not None:
            on_result(report)
    return report


def _peak(report: dict[str, Any]) -> float | None:
    for row in report["rows"]:
        if row["case"]["kind"] == "peak" and "error" not in row["result"]:
            return max(row["result"]["numpy_gflops_per_s"], row["result"]["jax_gflops_per_s"])
    return None


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _setting(case: dict[str, Any]) -> str:
    h, w, c = case["image"]
    text = f"{case['classes']} cl, {h}x{w}x{c}, ipc {case['ipc']}"
    if case["kind"] in ("matching", "outer"):
        text += f", batch_real {case['batch_real']}"
    if case.get("devices", 1) > 1:
        text += f", {case['devices']} devices"
    if case.get("method", "dc") != "dc":
        text += f", method {case['method']}"
    if case["kind"] == "eval":
        text = (f"{case['num_models']} net{'s' * (case['num_models'] > 1)}, {case['classes'] * case['ipc']} images, "
                f"{h}x{w}x{c}, "
                f"{case['epochs']} epochs, {case['test_images']} test")
    return text


def markdown(report: dict[str, Any], command: str) -> str:
    """The report as Markdown: one table per kind, figures as measured."""
    peak = _peak(report)
    machine = report["machine"]
    lines = ["# dcjax benchmark", "",
             f"Command: `{command}`  ", f"Date: {report['date']}  ",
             *([markdown_line(report)] if "provenance" in report else []),
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
             f"Python {machine['python']}, jax {machine['jax']}, flax {machine['flax']}; backend {machine['backend']}", ""]
    for row in report["rows"]:
        if row["case"]["kind"] == "peak" and "error" not in row["result"]:
            r = row["result"]
            lines += [f"Measured float32 matmul peak (2048x2048): NumPy {r['numpy_gflops_per_s']:.0f} GFLOP/s, "
                      f"jax.numpy {r['jax_gflops_per_s']:.0f} GFLOP/s; '% peak' below divides by the larger.", ""]
    lines += ["Times are medians of the timed runs after one warm-up run, each case in a fresh process. "
              "'peak RSS' is that process's maximum resident memory (compilation included); 'XLA temp' is "
              "the compiled program's scratch memory from `memory_analysis()` (what an accelerator would need "
              "besides arguments and outputs). GFLOP are XLA's `cost_analysis()` count (for chunked steps, "
              "the loop body's count times the number of chunks).", ""]
    header = ("| kind | formulation | setting | median s | runs | compile s | GFLOP | GFLOP/s | % peak | "
              "peak RSS GB | XLA temp GB |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    for row in report["rows"]:
        case, result = row["case"], row["result"]
        if case["kind"] == "peak":
            continue
        if "error" in result:
            lines.append(f"| {case['kind']} | {case['label']} | {_setting(case)} | error: {result['error']} |"
                         + " |" * 7)
            continue
        median = result.get("median_s")
        gfs = result.get("gflops_per_s")
        runs = "compile only" if case["compile_only"] else str(len(result.get("times_s", [])))
        lines.append("| " + " | ".join([
            case["kind"], case["label"] or case["mode"], _setting(case), _fmt(median), runs,
            _fmt(result.get("compile_s"), 1), _fmt(result.get("gflop"), 1), _fmt(gfs, 1),
            _fmt(100 * gfs / peak if gfs and peak else None, 0), _fmt(result.get("peak_rss_gb")),
            _fmt(result.get("xla_temp_gb"))]) + " |")
    if any(row["case"].get("devices", 1) > 1 for row in report["rows"]):
        lines += ["", "Simulated devices (`--xla_force_host_platform_device_count`) share this machine's "
                  f"{machine['cores']} physical cores: these rows show the overhead of the sharded program "
                  "(partitioning, collectives, padding classes), not a speed-up."]
    lines += _method_ratios(report)
    targets = _targets(report, peak)
    if targets:
        lines += ["", *targets]
    extra = [row for row in report["rows"] if row["case"]["kind"] in ("inner", "eval") and "error" not in row["result"]]
    if extra:
        lines += ["", "Inner updates: time per SGD step = median / steps. Evaluation: `epochs` in the recipe "
                  "(E+1 epochs run, as the reference), batch 256, then a 2000-image test pass per network. "
                  "XLA counts a loop body once, so no FLOP rate is given for outer iterations and evaluation.", ""]
        for row in extra:
            case, result = row["case"], row["result"]
            if case["kind"] == "inner":
                lines.append(f"- inner, {case['label']}: {result['sgd_steps']} SGD steps, "
                             f"{1000 * result['per_step_s']:.0f} ms per step")
            else:
                lines.append(f"- eval {case['mode']}: {case['num_models']} networks x {result['epochs_run']} "
                             f"epochs + test: {result['median_s']:.1f} s")
    return "\n".join(lines) + "\n"


def _method_ratios(report: dict[str, Any]) -> list[str]:
    """DSA's and DM's outer iteration against DC's, same ipc and shapes, same run."""
    outer = {(row["case"].get("method", "dc"), row["case"]["ipc"], row["case"]["batch_real"], tuple(row["case"]["image"]),
              row["case"]["classes"], row["case"].get("devices", 1)): row["result"].get("median_s")
             for row in report["rows"] if row["case"]["kind"] == "outer" and "error" not in row["result"]}
    lines = []
    for (method, *setting), median in outer.items():
        dc = outer.get(("dc", *setting))
        if method != "dc" and median and dc:
            ratio = f"{dc / median:.1f}x faster" if dc >= median else f"{median / dc:.1f}x slower"
            lines.append(f"- {method.upper()} at ipc {setting[0]}: one outer iteration takes {median:.2f} s, DC's "
                         f"{dc:.2f} s ({ratio} than DC's)")
    return ["", "Methods, same settings, same run:", *lines] if lines else []


def _default_matching(report: dict[str, Any], batch_real: int) -> dict[str, Any] | None:
    for row in report["rows"]:
        c = row["case"]
        if (c["kind"] == "matching" and c["batch_real"] == batch_real and c["mode"] == "unroll"
                and c["scheduler"] == "memory" and c["conv_impl"] == "matmul_grad" and c["ipc"] == 1
                and c["classes"] == 10 and tuple(c["image"]) == MNIST and "error" not in row["result"]):
            return row["result"]
    return None


def _targets(report: dict[str, Any], peak: float | None) -> list[str]:
    """The performance issue's targets, each with the measured figure and whether it is met."""
    lines = []
    for batch in (64, 256):
        ours = _default_matching(report, batch)
        if ours is None:
            continue
        if peak and ours.get("gflops_per_s"):
            share = ours["gflops_per_s"] / peak
            lines.append(f"| >= 50% of the matmul peak, batch_real {batch} | {100 * share:.0f}% | "
                         f"{'yes' if share >= 0.5 else f'no ({50 - 100 * share:.0f} points short)'} |")
    evals = {row["case"]["mode"]: row["result"] for row in report["rows"] if row["case"]["kind"] == "eval"}
    if "sequential" in evals and "error" not in evals["sequential"]:
        for mode in ("vmap", "map"):
            if mode in evals:
                r = evals[mode]
                measured = (f"error: {r['error']}" if "error" in r
                            else f"{evals['sequential']['median_s'] / r['median_s']:.2f}x")
                met = "no" if "error" in r or evals["sequential"]["median_s"] / r["median_s"] < 5 else "yes"
                lines.append(f"| 20 evaluation networks >= 5x faster than one after another ({mode}) | "
                             f"{measured} | {met} |")
    if not lines:   # no row any target applies to (e.g. --classes): no section
        return []
    return ["## Targets (performance issue), from the rows above", "", "| target | measured | met |", "|---|---|---|",
            *lines]


def write(report: dict[str, Any], out_dir: str, name: str, command: str) -> tuple[str, str]:
    """Write `<name>.json` and `<name>.md` (atomically, so an interrupted run leaves the last good pair).
    A report without provenance (not made by `run_suite`) gets that of this call."""
    report = {**report, "command": command}
    if "provenance" not in report:
        report["provenance"] = provenance()
    return write_results(out_dir, report, markdown(report, command), name)
