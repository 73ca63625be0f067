"""Differentiable Siamese Augmentation (Zhao & Bilen, ICML 2021): the reference's `DiffAugment`
(its utils.py, `ParamDiffAug` and `rand_*`) as pure, jittable, differentiable JAX functions.

Six operations, with the reference's parameters (`DSAParams`); x is NHWC in normalised space:

* color: brightness x + (r - 0.5) * 1.0, then saturation (x - channel mean) * 2r + channel mean,
  then contrast (x - image mean) * (r + 0.5) + image mean, each with its own r ~ U(0, 1);
* crop: an integer translation (tx, ty) in [-s, s] per axis, s = int(0.125 * H + 0.5), reading
  zeros outside the image (the reference's 1-pixel zero pad and clamped gather);
* cutout: zero a square of int(0.5 * H + 0.5) pixels around an integer centre (ox, oy) in
  [0, H + 1 - size % 2), clamped to the image (the reference's clamped index arithmetic);
* flip: mirror along the width with probability 0.5;
* scale: sample the image at (sx * u, sy * v), sx, sy ~ U(1/1.2, 1.2), in normalised coordinates;
* rotate: sample the image rotated by an angle ~ U(-15, 15) degrees.

scale and rotate are PyTorch's `affine_grid` + `grid_sample` (bilinear, zero padding,
align_corners=False, the reference's defaults). Mode 'S' (the reference's `aug_mode`): each call
applies ONE operation, drawn uniformly from the strategy's '_'-separated ops. Siamese (`siamese=True`):
every image of the call shares the first image's parameters; calls with the same key (the real and
the synthetic batch of one class in a matching step) then transform identically, whatever their
batch sizes. The reference draws its Siamese parameters from a clock seed; dcjax from the key.

Every op's parameters are explicit arguments of a `*_with` function (what the tests compare with a
NumPy transcription); `augment(key, x, strategy, siamese)` draws them and applies one op.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from dcjax.errors import ConfigError

OPS: tuple[str, ...] = ("color", "crop", "cutout", "flip", "scale", "rotate")
# The reference's default strategy for CIFAR-10/100 (and every dataset in its README commands).
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"


@dataclasses.dataclass(frozen=True)
class DSAParams:
    """The reference's `ParamDiffAug` (aug_mode 'S')."""
    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """The ops of `strategy` ('none' or '' -> no op); ConfigError naming the valid ops otherwise."""
    if strategy in ("none", "None", ""):
        return ()
    ops = tuple(strategy.split("_"))
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ConfigError(f"unknown DSA operation(s) {unknown} in strategy {strategy!r}; use ops from {OPS} "
                          f"joined by '_', e.g. {DEFAULT_STRATEGY!r}, or 'none'")
    return ops


# ----------------------------------------------------------------------------- the ops, parameters explicit

def color_with(x: jax.Array, brightness: jax.Array, saturation: jax.Array, contrast: jax.Array,
               params: DSAParams = DSAParams()) -> jax.Array:
    """Brightness, saturation, contrast with per-image draws in [0, 1) (each of shape (N,))."""
    b, s, c = (v.reshape(-1, 1, 1, 1) for v in (brightness, saturation, contrast))
    x = x + (b - 0.5) * params.brightness
    channel_mean = x.mean(axis=3, keepdims=True)
    x = (x - channel_mean) * (s * params.saturation) + channel_mean
    image_mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - image_mean) * (c + params.contrast) + image_mean


def crop_with(x: jax.Array, tx: jax.Array, ty: jax.Array) -> jax.Array:
    """Output pixel (i, j) is x[i + tx, j + ty], zero where that falls outside (integer (N,) shifts)."""
    _, h, w, _ = x.shape
    rows = jnp.arange(h)[None, :] + tx[:, None]
    cols = jnp.arange(w)[None, :] + ty[:, None]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    gathered = jax.vmap(lambda img, r, c: img[jnp.clip(r, 0, h - 1)][:, jnp.clip(c, 0, w - 1)])(x, rows, cols)
    return jnp.where(inside[..., None], gathered, 0.0)


def cutout_size(height: int, width: int, params: DSAParams = DSAParams()) -> tuple[int, int]:
    return int(height * params.ratio_cutout + 0.5), int(width * params.ratio_cutout + 0.5)


def cutout_with(x: jax.Array, ox: jax.Array, oy: jax.Array, params: DSAParams = DSAParams()) -> jax.Array:
    """Zero rows clamp(ox - size//2 + k, 0, H-1) x columns clamp(oy - size//2 + k, 0, W-1),
    k = 0..size-1 (integer (N,) centres)."""
    _, h, w, _ = x.shape
    sh, sw = cutout_size(h, w, params)
    first_row, first_col = ox - sh // 2, oy - sw // 2
    row_lo, row_hi = jnp.clip(first_row, 0, h - 1), jnp.clip(first_row + sh - 1, 0, h - 1)
    col_lo, col_hi = jnp.clip(first_col, 0, w - 1), jnp.clip(first_col + sw - 1, 0, w - 1)
    rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
    in_rows = (rows >= row_lo[:, None]) & (rows <= row_hi[:, None])
    in_cols = (cols >= col_lo[:, None]) & (cols <= col_hi[:, None])
    return x * (1.0 - (in_rows[:, :, None] & in_cols[:, None, :]).astype(x.dtype))[..., None]


def flip_with(x: jax.Array, flip: jax.Array) -> jax.Array:
    """Mirror along the width the images whose (N,) bool `flip` is set."""
    return jnp.where(flip.reshape(-1, 1, 1, 1), x[:, :, ::-1, :], x)


def affine_with(x: jax.Array, theta: jax.Array) -> jax.Array:
    """PyTorch's grid_sample(x, affine_grid(theta)) for (N, 2, 3) `theta`: bilinear, zeros outside,
    align_corners=False. Output pixel (i, j) at normalised (u, v) = ((2j+1)/W - 1, (2i+1)/H - 1)
    reads the source at theta @ (u, v, 1), un-normalised as ((s + 1) * size - 1) / 2."""
    n, h, w, _ = x.shape
    u = (2 * jnp.arange(w) + 1) / w - 1
    v = (2 * jnp.arange(h) + 1) / h - 1
    grid = jnp.stack([jnp.broadcast_to(u[None, :], (h, w)), jnp.broadcast_to(v[:, None], (h, w)),
                      jnp.ones((h, w))], axis=-1)                     # (H, W, 3)
    source = jnp.einsum("nij,hwj->nhwi", theta, grid)                  # (N, H, W, 2): (x, y)
    col = ((source[..., 0] + 1) * w - 1) / 2
    row = ((source[..., 1] + 1) * h - 1) / 2
    return jax.vmap(_bilinear_zeros)(x, row, col)


def _bilinear_zeros(image: jax.Array, row: jax.Array, col: jax.Array) -> jax.Array:
    """image (H, W, C) sampled at fractional (row, col) maps, neighbours outside the image read 0."""
    h, w, _ = image.shape
    r0, c0 = jnp.floor(row), jnp.floor(col)
    out = 0.0
    for dr in (0, 1):
        for dc in (0, 1):
            r, c = r0 + dr, c0 + dc
            weight = (1 - jnp.abs(row - r)) * (1 - jnp.abs(col - c))
            inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
            pixel = image[jnp.clip(r, 0, h - 1).astype(jnp.int32), jnp.clip(c, 0, w - 1).astype(jnp.int32)]
            out = out + jnp.where(inside, weight, 0.0)[..., None] * pixel
    return out


def scale_theta(sx: jax.Array, sy: jax.Array) -> jax.Array:
    zeros = jnp.zeros_like(sx)
    return jnp.stack([jnp.stack([sx, zeros, zeros], -1), jnp.stack([zeros, sy, zeros], -1)], -2)


def rotate_theta(angle: jax.Array) -> jax.Array:
    """The reference's [[cos, sin(-a), 0], [sin, cos, 0]] for angles in radians."""
    cos, sin, zeros = jnp.cos(angle), jnp.sin(angle), jnp.zeros_like(angle)
    return jnp.stack([jnp.stack([cos, -sin, zeros], -1), jnp.stack([sin, cos, zeros], -1)], -2)


# ----------------------------------------------------------------------------- random draws

def _draw(op: str, key: jax.Array, x: jax.Array, params: DSAParams, n: int) -> Callable[[jax.Array], jax.Array]:
    """`op` with its parameters drawn for n images, as a function of the batch."""
    _, h, w, _ = x.shape
    keys = jax.random.split(key, 3)
    uniform = [jax.random.uniform(k, (n,)) for k in keys]
    if op == "color":
        return lambda x: color_with(x, *uniform, params=params)
    if op == "crop":
        sx, sy = int(h * params.ratio_crop_pad + 0.5), int(w * params.ratio_crop_pad + 0.5)
        tx = jax.random.randint(keys[0], (n,), -sx, sx + 1)
        ty = jax.random.randint(keys[1], (n,), -sy, sy + 1)
        return lambda x: crop_with(x, tx, ty)
    if op == "cutout":
        ch, cw = cutout_size(h, w, params)
        ox = jax.random.randint(keys[0], (n,), 0, h + (1 - ch % 2))
        oy = jax.random.randint(keys[1], (n,), 0, w + (1 - cw % 2))
        return lambda x: cutout_with(x, ox, oy, params)
    if op == "flip":
        return lambda x: flip_with(x, uniform[0] < params.prob_flip)
    if op == "scale":
        r = params.ratio_scale
        sx, sy = (u * (r - 1.0 / r) + 1.0 / r for u in uniform[:2])
        return lambda x: affine_with(x, scale_theta(sx, sy))
    if op == "rotate":
        angle = (uniform[0] - 0.5) * 2 * params.ratio_rotate / 180 * math.pi
        return lambda x: affine_with(x, rotate_theta(angle))
    raise ConfigError(f"unknown DSA operation {op!r}; use one of {OPS}")


def apply_op(op: str, key: jax.Array, x: jax.Array, siamese: bool = False,
             params: DSAParams = DSAParams()) -> jax.Array:
    """`op` with parameters drawn from `key`: per image, or (siamese) the first image's for all."""
    n = x.shape[0]
    transform = _draw(op, key, x, params, 1 if siamese else n)
    if not siamese:
        return transform(x)
    return jax.vmap(lambda image: transform(image[None])[0])(x)


def augment(key: jax.Array, x: jax.Array, strategy: str = DEFAULT_STRATEGY, siamese: bool = False,
            params: DSAParams = DSAParams()) -> jax.Array:
    """One op of `strategy`, drawn uniformly by `key` (mode 'S'), applied to the batch `x` (NHWC);
    with `siamese`, calls with the same key transform every image alike. 'none' returns x."""
    ops = parse_strategy(strategy)
    if not ops:
        return x
    choice_key, op_key = jax.random.split(key)
    if len(ops) == 1:
        return apply_op(ops[0], op_key, x, siamese, params)
    branches = [lambda x, op=op: apply_op(op, op_key, x, siamese, params) for op in ops]
    return jax.lax.switch(jax.random.randint(choice_key, (), 0, len(ops)), branches, x)
