"""Mesh-axis types for the custom-VJP layers (convolution, instance norm) inside `jax.shard_map`."""
from __future__ import annotations

import jax
from jax import lax


def varying_alike(*values: jax.Array) -> list[jax.Array]:
    """`values`, each marked as varying over every mesh axis any of them varies over (in `jax.shard_map`).

    A custom VJP's cotangents must have their inputs' types. A parameter that is the same on every
    device (replicated, or made from a constant like instance norm's scale) meets maps that differ
    per device, so its cotangent would differ per device; marking it varying first makes autodiff
    sum those cotangents over the axes (pcast's transpose), as it does for JAX's own primitives.
    Outside shard_map (and with check_vma=False) nothing changes.
    """
    axes = frozenset().union(*(varying_axes(v) for v in values))
    return [lax.pcast(v, tuple(sorted(axes - varying_axes(v))), to="varying")
            if axes - varying_axes(v) else v for v in values]


def varying_axes(value: jax.Array) -> frozenset[str]:
    aval = jax.typeof(value)
    manual = getattr(aval, "manual_axis_type", None)   # jax 0.10; earlier releases call it `vma`
    return manual.varying if manual is not None else getattr(aval, "vma", frozenset())
