"""A network's first convolution and the instance norm after it, as one operation on CPU.

Why: in ConvNet the first block's map is the largest (32x32x128 per image for the paper's inputs)
while its input has 1 or 3 channels. Written as a convolution followed by instance norm, XLA:CPU
makes about eight full passes over that map per SGD step (two for the statistics, the rest in the
backward pass, several of them recomputing the same normalisation), and on a 2-core CPU those
passes were a fifth of the step. Because a convolution is linear in its patches, both the
statistics and the weight gradient can instead be read off small per-image moments of the patches:

* forward: with P_n the (H*W, K) im2col patches of image n (K = 9 x in_channels), its mean patch
  m_n and covariance C_n, the conv output z = P_n W has per-channel mean m_n W and variance
  diag(W^T C_n W), so no pass over z is needed for the statistics;
* backward: every term of the instance-norm-then-convolution weight gradient contracts the
  output gradient g with the patches, so one batched product B_n = [P_n, 1]^T g_n ((K+1) x out per
  image: a single read of g) together with m_n and C_n W gives the kernel, scale and bias
  gradients. The input gradient (needed only when the images themselves are differentiated, as
  in the matching step) still materialises the conv's output gradient; XLA removes it where the
  images are constants (network training).

Measured on a 2-core Intel Xeon (benchmarks/explore/NOTES.md): an SGD step of ConvNet-128 on 100
28x28x1 images ~170 -> ~160 ms, one matching step (ipc 1, 64 real images per class)
1.27 -> 1.10 s; at 32x32x3 182 -> 171 ms and 1.31 -> 1.19 s. ConvNet uses it when JAX's default
backend is the CPU (`Conv.fuses_with_instance_norm`, decided when the network is traced, so that
autodiff traces one formulation, not both); elsewhere the same parameters go through `conv2d` and
`instance_norm`, untested for speed there. Values and first and second derivatives equal those of
that composition up to float rounding (tests/test_nets.py).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from dcjax.nets.convolution import conv2d, im2col, input_gradient
from dcjax.nets.instance_norm import EPSILON
from dcjax.nets.manual_axes import varying_alike


def conv_instance_norm(x: jax.Array, kernel: jax.Array, scale: jax.Array, bias: jax.Array,
                       padding: int) -> jax.Array:
    """`instance_norm(conv2d(x, kernel, padding), scale, bias)` for NHWC `x`, stride 1, as one
    operation whose statistics and gradients come from per-image patch moments."""
    return _fused(*varying_alike(x, kernel, scale, bias), padding)


# The largest patch (in_channels x kernel offsets) whose convolution is written as a sum of
# elementwise products (`_weighted_patch_sum`) rather than a convolution.
SUMMED_PATCH_MAX = 9


@jax.custom_jvp
def _weighted_patch_sum(patches: jax.Array, weights: jax.Array) -> jax.Array:
    """The convolution `patches @ weights` as K elementwise multiply-adds.

    Why: XLA fuses elementwise work into its consumers, so the first block's largest map is never
    written to memory: it is recomputed from the small patches where the norm, activation, pooling
    and their derivatives read it. For a grey-scale input (9 terms) that is cheaper than the passes
    over the stored map: one ipc-1 evaluation network at 28x28x1 5.22-5.42 -> 4.64-5.10 s (ipc 10
    42.8 -> 39.0 s), a scanned SGD step on 100 images 135-139 -> 128-130 ms. For RGB (27 terms)
    the recomputation costs more than it saves (evaluation network at 32x32x3 5.09-5.19 ->
    6.07-6.24 s, SGD step 137-146 -> 148-153 ms). 2-core Intel Xeon, interleaved scratch probes
    (benchmarks/explore/NOTES.md, session 8). An ipc-1 outer iteration (mostly one matching step)
    first paid 1-5 % for it (0.998-1.024 -> 1.025-1.045 s), until its image gradient through the
    sum became one product (`_weighted_patch_sum_jvp`: 1.118 / 1.120 -> 1.052 / 1.060 s, session 10).
    """
    return sum(patches[..., i:i + 1] * weights[i] for i in range(patches.shape[-1]))


@functools.partial(_weighted_patch_sum.defjvp, symbolic_zeros=True)
def _weighted_patch_sum_jvp(primals, tangents):
    """Tangent in the patches as one product with the weights, so that reverse mode (the matching
    step differentiates the synthetic images through this sum) transposes it into one
    (H*W, out) x (out, K) product instead of K multiplies each reduced over the channels (at ipc 1,
    28x28x1, nine such reductions per class took ~45 ms of a ~1.05 s matching step)."""
    patches, weights = primals
    d_patches, d_weights = tangents
    out = _weighted_patch_sum(patches, weights)
    terms = []
    if not isinstance(d_patches, SymbolicZero):
        terms.append(jnp.einsum("...k,kf->...f", d_patches, weights))
    if not isinstance(d_weights, SymbolicZero):
        terms.append(_weighted_patch_sum(patches, d_weights))
    return out, functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(out)


def _forward(x, kernel, scale, bias, padding):
    patches = im2col(x, padding, kernel.shape[:2])
    n, height, width, k = patches.shape
    weights = kernel.reshape(k, -1)                                    # (K, out)
    z = _weighted_patch_sum(patches, weights) if k <= SUMMED_PATCH_MAX else conv2d(x, kernel, padding)
    mean_patch = jnp.mean(patches, axis=(1, 2))                        # (N, K)
    centred = (patches - mean_patch[:, None, None, :]).reshape(n, height * width, k)
    covariance = jnp.einsum("npk,npl->nkl", centred, centred) / (height * width)
    covariance_w = jnp.einsum("nkl,lf->nkf", covariance, weights)      # (N, K, out)
    mean = mean_patch @ weights                                        # (N, out)
    variance = jnp.maximum(jnp.einsum("nkf,kf->nf", covariance_w, weights), 0.0)
    inv_std = lax.rsqrt(variance + EPSILON)
    y = (z - mean[:, None, None, :]) * (inv_std * scale)[:, None, None, :] + bias
    return y, (x, patches, mean_patch, covariance_w, mean, inv_std, z, kernel, scale)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _fused(x, kernel, scale, bias, padding):
    return _forward(x, kernel, scale, bias, padding)[0]


def _fused_bwd(padding, residuals, dy):
    x, patches, mean_patch, covariance_w, mean, inv_std, z, kernel, scale = residuals
    n, height, width, k = patches.shape
    map_size = height * width
    weights = kernel.reshape(k, -1)
    with_ones = jnp.concatenate([patches, jnp.ones(patches.shape[:-1] + (1,), patches.dtype)], -1)
    products = jnp.einsum("npk,npf->nkf", with_ones.reshape(n, map_size, k + 1),
                          dy.reshape(n, map_size, -1))                 # (N, K+1, out)
    patch_dy, dy_sum = products[:, :k], products[:, k]                 # sum_p P g, sum_p g
    dy_normalised_sum = inv_std * (jnp.einsum("nkf,kf->nf", patch_dy, weights) - mean * dy_sum)
    gain = inv_std * scale                                             # (N, out)
    # sum_p P^T dz with dz = gain * (g - mean_p g - zhat * mean_p(g zhat)) and sum_p P^T zhat = inv_std * H*W * C W
    dweights = jnp.einsum("nf,nkf->kf", gain, patch_dy
                          - dy_sum[:, None, :] * mean_patch[:, :, None]
                          - (dy_normalised_sum * inv_std)[:, None, :] * covariance_w)
    normalised = (z - mean[:, None, None, :]) * inv_std[:, None, None, :]
    dz = gain[:, None, None, :] * (dy - (dy_sum / map_size)[:, None, None, :]
                                   - normalised * (dy_normalised_sum / map_size)[:, None, None, :])
    dx = input_gradient(x, dz, kernel, padding)
    return dx, dweights.reshape(kernel.shape), dy_normalised_sum.sum(0), dy_sum.sum(0)


_fused.defvjp(_forward, _fused_bwd)
