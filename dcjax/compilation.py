"""How dcjax asks XLA to compile its programs.

On CPU, XLA's default instruction scheduler favours concurrency: it starts independent work early,
which in a matching step means every class's real-batch activations are alive at once. The
memory-optimised scheduler orders the same program to keep few buffers alive; on the 2-core CPU
we measure on, it makes the matching step both faster and far leaner in XLA's scratch memory at
both batch sizes measured, the smaller working set presumably staying in cache (`python
bin/bench.py`; figures in benchmarks/results/bench_cpu.md, the dcjax default rows against "same,
XLA's default scheduler"). It is set per compilation (not through the process-wide XLA_FLAGS), so
users' own flags and other JAX code in the same process are untouched. Accelerators keep XLA's
defaults.
"""
from __future__ import annotations

from typing import Any, Callable

import jax

CPU_COMPILER_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}


def compiler_options(backend: str | None = None) -> dict[str, str]:
    """XLA options for programs compiled for `backend` (default: JAX's default backend)."""
    backend = backend or jax.default_backend()
    return dict(CPU_COMPILER_OPTIONS) if backend == "cpu" else {}


def jit(fun: Callable, **kwargs: Any) -> Callable:
    """`jax.jit` with dcjax's compiler options for the default backend."""
    return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
