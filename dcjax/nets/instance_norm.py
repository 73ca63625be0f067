"""Instance normalisation (the reference's `GroupNorm(C, C)`) with a hand-written backward pass.

Why not `flax.linen.GroupNorm(group_size=1)`: the values are the same, but on XLA:CPU the
autodiff of Flax's formulation makes several more full passes over the feature map in the backward
pass. On the CPU the paper's networks are trained on, the largest map (the first block's 32x32x128
per image) makes those passes a quarter of an SGD step of ConvNet-128 (measured: 253 ms per step with
GroupNorm, 193 ms without any norm). The backward here is two per-channel means and one
elementwise pass; the step falls to ~225 ms (benchmarks/explore/NOTES.md). It stays differentiable
(its backward is plain JAX), as the second-order matching loss needs.

Statistics as PyTorch computes them: biased variance, epsilon 1e-5, in float32; parameters `scale`
(ones) and `bias` (zeros) per channel, as Flax's GroupNorm names them.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

EPSILON = 1e-5
_MAP_AXES = (-3, -2)   # (H, W) of an NHWC feature map


def _statistics(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-image, per-channel mean and 1/sqrt(variance + eps), shaped to broadcast against x."""
    mean = jnp.mean(x, axis=_MAP_AXES, keepdims=True)
    mean_of_squares = jnp.mean(jnp.square(x), axis=_MAP_AXES, keepdims=True)
    variance = jnp.maximum(0.0, mean_of_squares - jnp.square(mean))
    return mean, lax.rsqrt(variance + EPSILON)


def _forward(x, scale, bias):
    mean, inv_std = _statistics(x)
    return (x - mean) * (inv_std * scale) + bias, (x, mean, inv_std, scale)


@jax.custom_vjp
def instance_norm(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    """Normalise each channel of each (..., H, W, C) map to mean 0 and variance 1, then scale and shift."""
    return _forward(x, scale, bias)[0]


def _backward(residuals, dy):
    x, mean, inv_std, scale = residuals
    normalised = (x - mean) * inv_std
    dy_mean = jnp.mean(dy, axis=_MAP_AXES, keepdims=True)
    dy_normalised_mean = jnp.mean(dy * normalised, axis=_MAP_AXES, keepdims=True)
    dx = (inv_std * scale) * (dy - dy_mean - normalised * dy_normalised_mean)
    map_size = x.shape[-3] * x.shape[-2]
    per_channel = tuple(range(x.ndim - 1))
    dscale = jnp.sum(dy_normalised_mean, axis=per_channel) * map_size
    dbias = jnp.sum(dy_mean, axis=per_channel) * map_size
    return dx, dscale, dbias


instance_norm.defvjp(_forward, _backward)

