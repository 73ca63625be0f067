"""Reading the logs of whole runs: the authors' main.py / main_DM.py and dcjax's bin/condense.py.

A run's output is kept as stamped lines, (seconds since the process was started, text), stamped by
the harness as each line arrives (`benchmarks.versus_authors`). From them:

* the authors' programs print `[date time] iter = 0010, loss = ...` every 10 outer iterations and,
  per evaluation network, `[date time] Evaluate_03: epoch = 0300 train time = 12 s ... test acc =
  0.7012` (their utils.get_time and evaluate_synset). Their own clock has one-second resolution, so
  rates come from the harness's stamps and their clock is kept as a cross-check;
* dcjax writes every outer iteration's `elapsed_s` to metrics.jsonl and the evaluation's seconds to
  summary.json; those are its own log.

Pure Python on text and dicts: no torch, jax or dcjax, so it is tested on recorded logs.
"""
from __future__ import annotations

import datetime
import re
import statistics
from typing import Any, Iterable, Sequence

StampedLine = tuple[float, str]

_OWN_CLOCK = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\]"
_ITER = re.compile(_OWN_CLOCK + r" iter = (\d+), loss = ([-+0-9.eE]+|nan|inf)")
_EVALUATE = re.compile(_OWN_CLOCK + r" Evaluate_(\d+): epoch = (\d+) train time = (\d+) s train loss = ([-+0-9.eE]+|nan)"
                       r" train acc = ([0-9.]+), test acc = ([0-9.]+)")
_EVALUATION_START = re.compile(r"^model_train = (\S+), model_eval = (\S+), iteration = (\d+)")


def _own_seconds(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").timestamp()


def read_stamped(path: str) -> list[StampedLine]:
    """A log as the harness writes it: one '<seconds>\t<text>' per line."""
    with open(path) as f:
        return [(float(at), text) for at, _, text in (line.rstrip("\n").partition("\t") for line in f)]


def parse_authors_log(lines: Sequence[StampedLine]) -> dict[str, Any]:
    """{iterations: [{iteration, at_s, own_clock_s, loss}], evaluations: [{iteration, model, start_s,
    networks: [{index, at_s, seconds, own_train_s, epochs, test_acc}]}]} from main.py's or main_DM.py's
    stamped output; a network's `seconds` runs from the previous network's line (or the evaluation's
    header) to its own, so it covers training and the test pass as a user waits for them."""
    iterations, evaluations = [], []
    previous_at = None
    for at, text in lines:
        text = text.strip()
        if m := _ITER.search(text):
            iterations.append({"iteration": int(m.group(2)), "at_s": at, "own_clock_s": _own_seconds(m.group(1)),
                               "loss": float(m.group(3))})
        elif m := _EVALUATION_START.search(text):
            evaluations.append({"iteration": int(m.group(3)), "model": m.group(2), "start_s": at, "networks": []})
            previous_at = at
        elif (m := _EVALUATE.search(text)) and evaluations:
            evaluations[-1]["networks"].append({
                "index": int(m.group(2)), "at_s": at, "seconds": at - previous_at, "own_train_s": int(m.group(4)),
                "epochs": int(m.group(3)), "test_acc": float(m.group(7))})
            previous_at = at
    return {"iterations": iterations, "evaluations": evaluations}


def _uninterrupted_stretches(parsed: dict[str, Any]) -> list[tuple[dict, dict]]:
    """Consecutive pairs of `iter =` points (10 iterations apart) with no evaluation between them."""
    busy = [(e["start_s"], e["networks"][-1]["at_s"] if e["networks"] else e["start_s"]) for e in parsed["evaluations"]]
    points = parsed["iterations"]
    return [(a, b) for a, b in zip(points, points[1:])
            if not any(a["at_s"] <= end and start <= b["at_s"] for start, end in busy)]


def _stretches_into_evaluations(parsed: dict[str, Any]) -> list[tuple[float, float]]:
    """(seconds, iterations) from the last `iter =` line before each evaluation to its header: an
    evaluation at iteration e starts before e trains, so after the line of iteration a it covers
    a+1 .. e-1. A short run (K=10 prints only iterations 0 and 10) has no other clean stretch."""
    out = []
    for e in parsed["evaluations"]:
        before = [p for p in parsed["iterations"] if p["at_s"] <= e["start_s"]]
        if before and e["iteration"] - before[-1]["iteration"] > 1:
            out.append((e["start_s"] - before[-1]["at_s"], e["iteration"] - before[-1]["iteration"] - 1))
    return out


def authors_iteration_seconds(parsed: dict[str, Any]) -> list[float]:
    """Seconds per outer iteration over each stretch between two `iter =` lines (they come every
    10 iterations) that no evaluation interrupts, and from the last line before an evaluation to
    its start, from the harness's stamps."""
    clean = [(b["at_s"] - a["at_s"], b["iteration"] - a["iteration"]) for a, b in _uninterrupted_stretches(parsed)]
    return [seconds / count for seconds, count in clean + _stretches_into_evaluations(parsed)]


def authors_own_clock_rate(parsed: dict[str, Any]) -> float | None:
    """Seconds per iteration by the program's own clock over the same stretches (one-second
    resolution: a cross-check of `authors_iteration_seconds`, not a figure of its own)."""
    stretches = _uninterrupted_stretches(parsed)
    if not stretches:
        return None
    return (sum(b["own_clock_s"] - a["own_clock_s"] for a, b in stretches)
            / sum(b["iteration"] - a["iteration"] for a, b in stretches))


def dcjax_iteration_seconds(metrics: Iterable[dict[str, Any]]) -> tuple[float | None, list[float]]:
    """(the first outer iteration's seconds, compilation included, or None; seconds of each later
    iteration) from a run's metrics.jsonl records: the differences of `elapsed_s` between
    consecutive iterations. The first is kept apart since it includes compiling the step."""
    elapsed = {}
    for record in metrics:
        if "elapsed_s" in record and "matching_loss" in record:
            elapsed[int(record["iteration"])] = float(record["elapsed_s"])
    if not elapsed:
        return None, []
    order = sorted(elapsed)
    first = elapsed[order[0]]
    later = [elapsed[b] - elapsed[a] for a, b in zip(order, order[1:]) if b == a + 1]
    return first, later


def summarize(values: Sequence[float]) -> dict[str, Any] | None:
    """{median, min, max, n} of `values`, or None when empty."""
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}
