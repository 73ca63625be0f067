"""Test set-up: repository root on sys.path (for `configs`), JAX on CPU with a compilation cache.

Several tests compile the same outer step (same shapes, new `jax.jit` closures); JAX's persistent
compilation cache in a per-session temporary directory lets the repeats skip XLA compilation.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="dcjax-test-jax-cache-"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
