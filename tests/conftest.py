"""Test set-up: repository root on sys.path (for `configs` and `benchmarks`), JAX on CPU with a
compilation cache.

Several tests compile the same outer step (same shapes, new `jax.jit` closures), many of them in
child processes (`bin/condense.py` started, signalled, killed and resumed); JAX's persistent
compilation cache in a per-session temporary directory lets the repeats skip XLA compilation. It is
set through the environment too, so that child processes share it.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

_CACHE = tempfile.mkdtemp(prefix="dcjax-test-jax-cache-")
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE                 # inherited by child processes
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.5"
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
