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

The second CPU option keeps XLA:CPU's YNNPACK library for dots and reductions but not for
convolutions, which then go through XLA's own (Eigen) convolution. With jaxlib 0.10.2 that makes an
SGD step of ConvNet-128 on 100 images ~5 % faster (28x28x1: 174-183 -> 171-173 ms; 32x32x3:
183-193 -> 175-180 ms) and one ipc-1 evaluation network 3-6 % faster, and leaves the matching step
unchanged (2-core Intel Xeon, interleaved runs; benchmarks/explore/NOTES.md, session 6). It names
the library's fusion kinds as this jaxlib defines them, so it is set only for the jaxlib minor
version it was measured with (`MEASURED_JAXLIB`); other versions keep XLA's default kernels.
"""
from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jaxlib

CPU_COMPILER_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
MEASURED_JAXLIB = (0, 10)
CPU_KERNEL_OPTIONS = {
    # XLA's default list for this jaxlib is these two and LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION.
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


def _jaxlib_minor_version() -> tuple[int, ...]:
    """(major, minor) of the installed jaxlib; () if its version string is not of that form."""
    match = re.match(r"(\d+)\.(\d+)", jaxlib.__version__)
    return (int(match.group(1)), int(match.group(2))) if match else ()


def compiler_options(backend: str | None = None) -> dict[str, str]:
    """XLA options for programs compiled for `backend` (default: JAX's default backend)."""
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return {}
    options = dict(CPU_COMPILER_OPTIONS)
    if _jaxlib_minor_version() == MEASURED_JAXLIB:
        options.update(CPU_KERNEL_OPTIONS)
    return options


def jit(fun: Callable, **kwargs: Any) -> Callable:
    """`jax.jit` with dcjax's compiler options for the default backend."""
    return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
