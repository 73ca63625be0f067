"""Where a result was measured: the commit, whether the tree had uncommitted changes, the machine.

Besides the commit, a record names the code that computes figures: `code` hashes HEAD's git blob
ids of every file under `CODE_DIRS` (the library, the configs, the benchmark scripts; results
excluded). Commits that only add results or tests leave it unchanged, so rows measured at different
commits with equal `code` (and no uncommitted changes there) come from the same code: a long benchmark may finish over several sessions with
`--resume` and still be figures of one code state.

Every results writer under benchmarks/ stores `provenance()` in its JSON as "provenance" and puts
`markdown_line(...)` in its Markdown, so a figure can be traced to the code that produced it.
Reads git and /proc only; imports neither jax nor dcjax.
"""
from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE_DIRS = ("dcjax", "configs", "benchmarks")
RESULTS_DIR = "benchmarks/results/"
# Environment variables that change which kernels the two codes run (instruction set caps, thread
# counts, XLA options): a result measured under any of them says so.
KERNEL_ENVIRONMENT = ("XLA_FLAGS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                      "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _git(repo: str, *args: str) -> str | None:
    """stdout of `git -C repo args`, or None if git is missing or fails (e.g. not a checkout)."""
    try:
        proc = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def cpu_model() -> str:
    """The CPU's model name, family and model numbers and whether it has AVX-512 ('AMD EPYC, family
    25 model 17, AVX-512'; from /proc/cpuinfo on Linux, else what `platform` knows, or '?').

    Virtual machines often report a bare 'AMD EPYC': family and model tell its generations apart,
    and AVX-512 alone moves dcjax's and PyTorch's speeds (and their ratio) a long way."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block says it all
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" not in fields:
        return platform.processor() or platform.machine() or "?"
    described = fields["model name"]
    if "cpu family" in fields and "model" in fields:
        described += f", family {fields['cpu family']} model {fields['model']}"
    if "flags" in fields:
        described += ", AVX-512" if "avx512f" in fields["flags"].split() else ", no AVX-512"
    return described


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance(repo: str = REPO_ROOT) -> dict[str, Any]:
    """{commit: the 40-hex HEAD sha of `repo` (None outside a git checkout), dirty: whether
    `git status --porcelain` lists anything outside benchmarks/results/, untracked files included
    (None without a commit),
    code: 12 hex digits naming HEAD's files under `CODE_DIRS` (see the module docstring), code_dirty:
    whether those files have uncommitted changes, cpu, cores, python, jax, jaxlib, utc: the time of the call,
    environment: the `KERNEL_ENVIRONMENT` variables that are set (omitted when none is)}."""
    commit = _git(repo, "rev-parse", "HEAD")
    commit = commit.strip() if commit else None
    # Results files are what benchmarks write: a benchmark's second row must not call the tree dirty
    # because of its own first row.
    status = _git(repo, "status", "--porcelain", "--", ".", f":(exclude){RESULTS_DIR}") if commit else None
    code, code_status = None, None
    if commit:
        listing = _git(repo, "ls-tree", "-r", "HEAD", "--", *CODE_DIRS) or ""
        files = sorted(line for line in listing.splitlines() if not line.split("\t", 1)[-1].startswith(RESULTS_DIR))
        code = hashlib.sha1("\n".join(files).encode()).hexdigest()[:12]
        code_status = _git(repo, "status", "--porcelain", "--", *CODE_DIRS, f":(exclude){RESULTS_DIR}")
    record = {"commit": commit, "dirty": None if status is None else bool(status.strip()),
              "code": code, "code_dirty": None if code_status is None else bool(code_status.strip()),
              "cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
              "jax": _version("jax"), "jaxlib": _version("jaxlib"),
              "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    environment = {name: os.environ[name] for name in KERNEL_ENVIRONMENT if name in os.environ}
    if environment:
        record["environment"] = environment
    return record


def describe(record: dict[str, Any]) -> str:
    """'commit <sha> (clean|uncommitted changes) on <cpu>, <cores> cores; jax <version>, jaxlib
    <version>; <UTC time>' for a `provenance()` record, or for one added afterwards to results
    measured before provenance existed (`from_history`: the commit that added them)."""
    if record.get("commit") and record.get("from_history"):
        where = (f"commit {record['commit']} (recorded afterwards from git history: the commit that added these "
                 f"results; whether the tree was clean was not recorded)")
    elif record.get("commit"):
        where = f"commit {record['commit']} ({'uncommitted changes' if record.get('dirty') else 'clean'})"
        if record.get("code"):
            where += f", code {record['code']}{' + uncommitted changes' if record.get('code_dirty') else ''}"
    else:
        where = "an unknown commit (not a git checkout)"
    environment = "".join(f"; {name}={value}" for name, value in record.get("environment", {}).items())
    return (f"{where} on {record.get('cpu', '?')}, {record.get('cores', '?')} cores; "
            f"jax {record.get('jax')}, jaxlib {record.get('jaxlib')}{environment}; {record.get('utc', '?')}")


def markdown_line(results: dict[str, Any]) -> str:
    """The Markdown line (with its line break) saying where `results` were measured: 'Measured at
    <describe(results["provenance"])>', or, for results written before provenance was recorded,
    their "machine" record as it was printed then."""
    if "provenance" in results:
        return f"Measured at {describe(results['provenance'])}  "
    return f"Machine: {results['machine']}  "
