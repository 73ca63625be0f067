"""Gradient distances over pytrees and the class-wise gradient-matching loss.

The distance `D` of the paper (metric 'ours') compares the gradient on the synthetic images with
the gradient on real images layer by layer and output unit by output unit: every weight tensor
with two or more dimensions is flattened to one row per output unit (Flax keeps the output axis
LAST: conv kernels (h, w, in, out), dense (in, out), layer-norm scales (h, w, c)), and the distance
sums `1 - <r, s> / (|r| |s| + 1e-6)` over rows and layers. One-dimensional tensors (biases, norm
scales and offsets) are ignored. 'mse' and 'cos' are the ablation metrics of paper Table T11.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from dcjax.errors import ConfigError

PyTree = Any
METRICS = ("ours", "mse", "cos")
_EPS = 1e-6


def _safe_norm(x: jax.Array, axis=None) -> jax.Array:
    """Euclidean norm whose gradient at a zero vector is 0 (as in PyTorch), not NaN."""
    sq = jnp.sum(x * x, axis=axis)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _columns_by_output_unit(g: jax.Array) -> jax.Array:
    """(..., out) -> (prod(...), out): one column per output unit (a reshape; no transposing copy)."""
    return g.reshape(-1, g.shape[-1])


def layerwise_distance(g_syn: jax.Array, g_real: jax.Array) -> jax.Array:
    """Sum over output units of the cosine distance between their gradients; 0 for 1-D tensors."""
    if g_syn.ndim < 2:
        return jnp.zeros((), g_syn.dtype)
    s, r = _columns_by_output_unit(g_syn), _columns_by_output_unit(g_real)
    cosine = jnp.sum(r * s, axis=0) / (_safe_norm(r, axis=0) * _safe_norm(s, axis=0) + _EPS)
    return jnp.sum(1.0 - cosine)


def _flat(tree: PyTree) -> jax.Array:
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


def gradient_distance(g_syn: PyTree, g_real: PyTree, metric: str = "ours") -> jax.Array:
    """Distance between two gradient pytrees of the same structure ('ours', 'mse' or 'cos')."""
    if metric == "ours":
        per_leaf = jax.tree_util.tree_map(layerwise_distance, g_syn, g_real)
        return sum(jax.tree_util.tree_leaves(per_leaf))
    if metric == "mse":
        return jnp.sum((_flat(g_syn) - _flat(g_real)) ** 2)
    if metric == "cos":
        s, r = _flat(g_syn), _flat(g_real)
        return 1.0 - jnp.sum(r * s) / (_safe_norm(r) * _safe_norm(s) + _EPS)
    raise ConfigError(f"unknown metric {metric!r}; set config.metric to one of {METRICS}")


ApplyFn = Callable[..., jax.Array]


def cross_entropy_gradient(apply_fn: ApplyFn, params: PyTree, frozen: PyTree,
                           images: jax.Array, label: jax.Array) -> PyTree:
    """Gradient w.r.t. `params` of the mean cross-entropy of `images`, all of class `label`.

    `frozen` holds the non-trainable collections (batch-norm running statistics, used frozen).
    """
    def loss(p):
        logits = apply_fn({"params": p, **frozen}, images, train=False)
        labels = jnp.broadcast_to(label, logits.shape[:1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    return jax.grad(loss)(params)


def class_matching_loss(apply_fn: ApplyFn, params: PyTree, frozen: PyTree, syn: jax.Array,
                        real: jax.Array, label: jax.Array, metric: str,
                        reduce_real: Callable[[PyTree], PyTree] | None = None) -> jax.Array:
    """D(grad on the class's synthetic images, grad on its real images) for one class.

    `reduce_real` combines the real-batch gradient across devices when the real batch is split
    over a mesh axis (a `pmean`, since every device holds an equal share of the batch).
    """
    g_real = cross_entropy_gradient(apply_fn, params, frozen, real, label)
    if reduce_real is not None:
        g_real = reduce_real(g_real)
    g_real = jax.lax.stop_gradient(g_real)
    g_syn = cross_entropy_gradient(apply_fn, params, frozen, syn, label)
    return gradient_distance(g_syn, g_real, metric)


CLASS_PARALLEL = ("auto", "vmap", "unroll", "map")
UNROLL_MAX_CLASSES = 20   # 'auto' on CPU unrolls up to this many classes and maps more


def resolve_class_parallel(mode: str, num_classes: int | None = None) -> str:
    """The mode `matching_loss_and_grad` runs for `mode` and `num_classes` classes.

    'auto' is 'vmap' on accelerators. On CPU it is 'unroll' for up to UNROLL_MAX_CLASSES classes and
    'map' for more. Decision, from `python bin/bench.py --classes` (benchmarks/results/
    bench_cpu_classes.md, 2-core Intel Xeon): a CIFAR-100 ipc-1 outer iteration (batch_real 256)
    unrolled compiles in 154 s with 5.8 GB peak memory against 3.6 s and 1.75 GB mapped, for a step
    3 % faster (40.44 vs 41.72 s, one run each; 42.65 vs 42.62 s in an earlier run), which only runs
    of over ~120 iterations would win back, at 3.3x the memory. At 10 classes unrolled steps are 1-3
    % faster there (0.97 vs 1.00 s at 28x28x1, batch_real 64; 1.07 vs 1.08 and 4.17 vs 4.24 s at
    32x32x3, batch_real 64 and 256) and compile in 7-8 s against 2.4-2.5 s; earlier scratch probes
    found unrolled 5-10 % faster at 28x28x1 and at small real batches (benchmarks/explore/NOTES.md,
    sessions 7 and 9). So few classes stay unrolled.
    `num_classes` None resolves 'auto' as for few classes.
    """
    if mode not in CLASS_PARALLEL:
        raise ConfigError(f"config.class_parallel must be one of {CLASS_PARALLEL}, got {mode!r}")
    if mode != "auto":
        return mode
    if jax.default_backend() != "cpu":
        return "vmap"
    return "unroll" if num_classes is None or num_classes <= UNROLL_MAX_CLASSES else "map"


@functools.lru_cache(maxsize=32)
def _class_loss_and_grad(apply_fn: ApplyFn, metric: str,
                         reduce_real: Callable[[PyTree], PyTree] | None) -> Callable:
    """(params, frozen, syn_c, real_c, label) -> (class_matching_loss, its gradient in syn_c), jitted.

    Jitted so that the classes unrolled in one program trace it once, not once per class (XLA
    inlines the calls: the compiled program is the same), which takes seconds off every
    compilation; cached so that eager calls with the same network reuse its compilation. Plain
    `jax.jit`: JAX refuses compiler options on a nested jit; callers jit the step with them.
    """
    def class_loss_and_grad(params, frozen, syn_c, real_c, label):
        return jax.value_and_grad(
            lambda s: class_matching_loss(apply_fn, params, frozen, s, real_c, label, metric, reduce_real))(syn_c)
    return jax.jit(class_loss_and_grad)


def matching_loss_and_grad(apply_fn: ApplyFn, params: PyTree, frozen: PyTree, syn: jax.Array,
                           real: jax.Array, metric: str = "ours", class_parallel: str = "vmap",
                           class_chunk: int | None = None, labels: jax.Array | None = None,
                           reduce_real: Callable[[PyTree], PyTree] | None = None) -> tuple[jax.Array, jax.Array]:
    """Per-class matching losses (C,) and their gradient w.r.t. the synthetic images.

    `syn` is (C, ipc, H, W, ch) and `real` (C, n, H, W, ch), class c in row c. The classes are
    independent given the network, so every class's loss and image gradient is computed at once:
    with `class_parallel='vmap'` as one `jax.vmap` over classes (the fast path on accelerators;
    `class_chunk` bounds memory by running groups of that many classes in sequence), with
    'unroll' as one call per class of a jitted per-class function (`_class_loss_and_grad`; XLA
    inlines the calls, so the program holds one copy per class), which XLA's CPU backend runs
    faster than the vmapped form (`python bin/bench.py`; figures in benchmarks/results/bench_cpu.md,
    'classes unrolled' against 'classes vmapped'), or with 'map' as a `lax.map` over classes, one
    class per iteration and one copy in the program (on CPU as fast as unrolled for large real
    batches, and compiled in seconds however many classes; `resolve_class_parallel` says when
    'auto' takes it). All modes give the same values.
    `labels` are the rows' class ids (default 0..C-1; a device holding a slice of the classes passes
    its own); `reduce_real` is passed to `class_matching_loss`.
    """
    class_loss_and_grad = _class_loss_and_grad(apply_fn, metric, reduce_real)

    def one_class(args):
        return class_loss_and_grad(params, frozen, *args)

    if labels is None:
        labels = jnp.arange(syn.shape[0])
    return over_classes(one_class, (syn, real, labels), class_parallel, class_chunk)


def over_classes(fn: Callable[[Any], Any], args: Any, class_parallel: str = "vmap",
                 class_chunk: int | None = None) -> Any:
    """`fn` applied to each class's slice of `args` (a pytree whose leaves have the classes first),
    the results stacked along a new first axis: one call per class ('unroll'), a `lax.map`
    ('map') or a `jax.vmap` ('vmap', in groups of `class_chunk` classes when given), as
    `resolve_class_parallel` resolves `class_parallel`. Every mode gives the same values; they
    differ in speed, memory and compilation time. A `lax.switch` inside `fn` whose index differs
    per class stays one branch per class unrolled or mapped, but runs every branch under vmap."""
    num_classes = jax.tree_util.tree_leaves(args)[0].shape[0]
    mode = resolve_class_parallel(class_parallel, num_classes)
    if mode == "unroll":
        results = [fn(jax.tree_util.tree_map(lambda a: a[c], args)) for c in range(num_classes)]
        return jax.tree_util.tree_map(lambda *per_class: jnp.stack(per_class), *results)
    if mode == "map":
        return jax.lax.map(fn, args)
    if class_chunk is None or class_chunk >= num_classes:
        return jax.vmap(fn)(args)
    return jax.lax.map(fn, args, batch_size=class_chunk)
