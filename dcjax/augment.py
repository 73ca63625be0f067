"""The reference's evaluation-time "DC augmentation" (`augment`, `get_daparam` in its utils.py), jittable.

Evaluation networks trained on a synthetic set may see each batch augmented: every image gets ONE
op drawn uniformly from the strategy's '_'-separated ops (the reference's
`np.random.permutation(augs)[0]` per image). The ops, with the reference's parameters
(crop=4, scale=0.2, rotate=45, noise=0.001):

* crop: pad by 4 with the batch's per-channel mean, take the original-size window at an offset
  drawn from [0, 7] per axis (`np.random.permutation(8)[0]`, never 8).
* scale: nearest-neighbour resize to int(U(0.8, 1.2) * H) x int(U(0.8, 1.2) * W) (two independent
  draws, as the reference), placed centred on a zero canvas, centre window of the original size.
* rotate: rotation by an integer angle in [-45, 44] degrees (`np.random.randint(-45, 45)`) as
  `scipy.ndimage.rotate` (reshape to the rotated bounding box, then centre crop), filled with
  the mean of the batch's channel means.
* noise: + 0.001 * standard normal.

Batches are NHWC float32 in normalised pixel space, shapes are static and randomness comes from
`jax.random` keys only, so `augment` runs inside the compiled training loop. Crop, scale and
rotate are all "inverse maps": each output pixel reads a (possibly fractional) source position,
or a fill value outside the image. `augment` selects each image's map and fill and samples once.

Differences from the reference (utils.py:365-445):

* rotate samples bilinearly, not with scipy's cubic spline (order=3 with prefilter); positions
  within one pixel outside the image blend the border pixel with the fill value (scipy's
  'grid-constant' mode at order 1), where the reference's mode='constant' gives them the fill
  value outright, so a rotated image's border is a little softer. The output geometry (bounding box, centre crop including
  its half-pixel shift when box and image sizes differ by an odd number) is scipy's; the
  rotation matrix is computed in float32, so a 90-degree rotation equals `np.rot90` to ~1e-6.
* scale draws the output width from W where the reference uses H for both (the same for the
  square images of every dataset here). The resize is PyTorch's `F.interpolate` 'nearest' rule
  (source = min(floor(dst * float32(in / out)), in - 1)), so the op matches the reference
  exactly for the same drawn sizes; the factor is drawn in float32 rather than float64.
* the random draws come from `jax.random`, not NumPy's global generator, so individual
  augmented batches differ from a reference run while following the same distributions.
* an unknown op raises ConfigError; the reference silently leaves the image unchanged.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from dcjax.errors import ConfigError

OPS: tuple[str, ...] = ("crop", "scale", "rotate", "noise")
CROP_PAD = 4            # pixels of mean-coloured border; offsets in [0, 2 * CROP_PAD - 1]
SCALE = 0.2             # size factors in U(1 - SCALE, 1 + SCALE)
ROTATE_DEGREES = 45     # integer angles in [-ROTATE_DEGREES, ROTATE_DEGREES - 1]
NOISE_STD = 0.001
_OUTSIDE = -2.0         # a source coordinate whose bilinear neighbours are all outside the image


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """The ops of `strategy` ('none' -> no op); ConfigError naming the valid ops otherwise."""
    if strategy == "none":
        return ()
    ops = tuple(strategy.split("_"))
    unknown = [op for op in ops if op not in OPS]
    if unknown:
        raise ConfigError(f"unknown augmentation op(s) {unknown} in strategy {strategy!r}; use 'none', "
                          f"ops from {OPS} joined by '_', e.g. 'crop_scale_rotate', or 'dsa' for DSA's DiffAugment")
    return ops


def default_strategy(dataset_name: str, eval_model_name: str | None) -> str:
    """The reference's `get_daparam`: MNIST -> crop_scale_rotate; ConvNetBN -> crop_noise; else none.

    The model rule wins, as in the reference (it is applied second). Dataset names compare
    case-insensitively, so the reference's 'MNIST' and dcjax's 'mnist' both match.
    """
    if eval_model_name == "ConvNetBN":   # "augmentation makes training with batch norm easier"
        return "crop_noise"
    if dataset_name.lower() == "mnist":
        return "crop_scale_rotate"
    return "none"


# ---- Sampling: every geometric op is a map from output pixels to source coordinates. ----

def _output_grid(height: int, width: int) -> tuple[jax.Array, jax.Array]:
    """Row and column index of every output pixel, float32, each of shape (H, W)."""
    return jnp.meshgrid(jnp.arange(height, dtype=jnp.float32), jnp.arange(width, dtype=jnp.float32),
                        indexing="ij")


def _sample(images: jax.Array, coords: jax.Array, fill: jax.Array) -> jax.Array:
    """Bilinear read of `images` (N, H, W, C) at `coords` (N, H, W, 2: row, col); `fill` (N, C) outside.

    At integer coordinates the weights are exactly 1 and 0, so crop and scale copy pixels exactly.
    """
    height, width = images.shape[1:3]
    y0, x0 = jnp.floor(coords[..., 0]), jnp.floor(coords[..., 1])
    wy, wx = coords[..., 0] - y0, coords[..., 1] - x0
    out = jnp.zeros(images.shape, images.dtype)
    for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        yi, xi = (y0 + dy).astype(jnp.int32), (x0 + dx).astype(jnp.int32)
        inside = (yi >= 0) & (yi < height) & (xi >= 0) & (xi < width)
        read = jax.vmap(lambda image, y, x: image[y, x])(
            images, jnp.clip(yi, 0, height - 1), jnp.clip(xi, 0, width - 1))
        out = out + weight[..., None] * jnp.where(inside[..., None], read, fill[:, None, None, :])
    return out


def _crop_coords(offsets: jax.Array, height: int, width: int) -> jax.Array:
    """Window at `offsets` (N, 2) of the image padded by CROP_PAD: source = output + offset - pad."""
    rows, cols = _output_grid(height, width)
    shift = (offsets - CROP_PAD).astype(jnp.float32)
    return jnp.stack([rows + shift[:, :1, None], cols + shift[:, 1:, None]], axis=-1)


def _nearest_source(position: jax.Array, out_size: jax.Array, in_size: int) -> jax.Array:
    """PyTorch 'nearest' resize in_size -> out_size: source of `position`, or _OUTSIDE past the end."""
    ratio = jnp.float32(in_size) / out_size.astype(jnp.float32)
    source = jnp.minimum(jnp.floor(position * ratio), in_size - 1)
    return jnp.where((position >= 0) & (position < out_size), source, _OUTSIDE)


def _scale_coords(sizes: jax.Array, height: int, width: int) -> jax.Array:
    """The reference's scalefun for resized sizes (N, 2): resize, centre on a zero canvas, centre crop.

    The canvas is max(h, w, H, W) square; the resized image sits at int((m - h) / 2) and the
    output window at int((m - H) / 2), so output row i reads resized row i + (m - H)//2 - (m - h)//2.
    """
    rows, cols = _output_grid(height, width)
    h, w = sizes[:, 0, None, None], sizes[:, 1, None, None]
    canvas = jnp.maximum(jnp.maximum(h, w), max(height, width))
    row = rows + ((canvas - height) // 2 - (canvas - h) // 2).astype(jnp.float32)
    col = cols + ((canvas - width) // 2 - (canvas - w) // 2).astype(jnp.float32)
    return jnp.stack([_nearest_source(row, h, height), _nearest_source(col, w, width)], axis=-1)


def _rotate_coords(angles: jax.Array, height: int, width: int) -> jax.Array:
    """scipy.ndimage.rotate(reshape=True) by `angles` (N,) degrees, then the reference's centre crop.

    scipy maps output o of the (box_h, box_w) bounding box to input R (o - (box - 1) / 2) + (in - 1) / 2
    with R = [[cos, sin], [-sin, cos]]; the reference keeps box rows from int((box_h - H) / 2).
    """
    rows, cols = _output_grid(height, width)
    radians = jnp.deg2rad(angles.astype(jnp.float32))[:, None, None]
    cos, sin = jnp.cos(radians), jnp.sin(radians)
    box_h = jnp.floor(jnp.abs(cos) * height + jnp.abs(sin) * width + 0.5)
    box_w = jnp.floor(jnp.abs(sin) * height + jnp.abs(cos) * width + 0.5)
    y = rows + jnp.floor((box_h - height) / 2) - (box_h - 1) / 2
    x = cols + jnp.floor((box_w - width) / 2) - (box_w - 1) / 2
    return jnp.stack([cos * y + sin * x + (height - 1) / 2, -sin * y + cos * x + (width - 1) / 2], axis=-1)


def _channel_means(images: jax.Array) -> jax.Array:
    """The batch's per-channel means (C,): the reference's `mean` list."""
    return jnp.mean(images, axis=(0, 1, 2))


# ---- Each geometric op: its parameters' draw and its (coordinates, fill) plan. ----

Plan = tuple[jax.Array, jax.Array]   # source coordinates (N, H, W, 2) and fill (N, C)


def _crop_plan(images: jax.Array, offsets: jax.Array) -> Plan:
    """Window at `offsets` (N, 2) of the batch padded by CROP_PAD with its channel means."""
    n, height, width, channels = images.shape
    return _crop_coords(offsets, height, width), jnp.broadcast_to(_channel_means(images), (n, channels))


def _scale_plan(images: jax.Array, sizes: jax.Array) -> Plan:
    """Nearest resize to `sizes` (N, 2), centred on zeros (the reference's torch.zeros canvas)."""
    n, height, width, channels = images.shape
    return _scale_coords(sizes, height, width), jnp.zeros((n, channels), images.dtype)


def _rotate_plan(images: jax.Array, angles: jax.Array) -> Plan:
    """Rotation by `angles` (N,) degrees, filled with the mean of the channel means (scipy's cval)."""
    n, height, width, channels = images.shape
    fill = jnp.full((n, channels), jnp.mean(_channel_means(images)), images.dtype)
    return _rotate_coords(angles, height, width), fill


def _crop_offsets(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.randint(key, (shape[0], 2), 0, 2 * CROP_PAD)


def _scaled_sizes(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    factors = jax.random.uniform(key, (shape[0], 2), jnp.float32, 1 - SCALE, 1 + SCALE)
    return jnp.floor(factors * jnp.array(shape[1:3], jnp.float32)).astype(jnp.int32)


def _angles(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.randint(key, (shape[0],), -ROTATE_DEGREES, ROTATE_DEGREES)


_GEOMETRIC: dict[str, tuple[Callable, Callable]] = {
    "crop": (_crop_offsets, _crop_plan), "scale": (_scaled_sizes, _scale_plan), "rotate": (_angles, _rotate_plan)}


def _random_plan(op: str, key: jax.Array, images: jax.Array) -> Plan:
    draw, plan = _GEOMETRIC[op]
    return plan(images, draw(key, images.shape))


# ---- The ops on their own: explicit parameters (deterministic) and random. ----

def crop_at(images: jax.Array, offsets: jax.Array) -> jax.Array:
    """Pad by CROP_PAD with the batch's channel means and keep image n's window at offsets[n] = (row, col)."""
    return _sample(images, *_crop_plan(images, offsets))


def scale_to(images: jax.Array, sizes: jax.Array) -> jax.Array:
    """Nearest resize of image n to sizes[n] = (h, w), centred on zeros, cropped back to H x W."""
    return _sample(images, *_scale_plan(images, sizes))


def rotate_by(images: jax.Array, angles: jax.Array) -> jax.Array:
    """Rotate image n by angles[n] degrees (counter-clockwise) about its centre, mean-filled."""
    return _sample(images, *_rotate_plan(images, angles))


def crop(key: jax.Array, images: jax.Array) -> jax.Array:
    return _sample(images, *_random_plan("crop", key, images))


def scale(key: jax.Array, images: jax.Array) -> jax.Array:
    return _sample(images, *_random_plan("scale", key, images))


def rotate(key: jax.Array, images: jax.Array) -> jax.Array:
    return _sample(images, *_random_plan("rotate", key, images))


def noise(key: jax.Array, images: jax.Array) -> jax.Array:
    return images + NOISE_STD * jax.random.normal(key, images.shape, images.dtype)


def augment(key: jax.Array, images: jax.Array, strategy: str) -> jax.Array:
    """Each image of the batch transformed by ONE op drawn uniformly from `strategy`'s ops.

    Repeated ops weigh more ('crop_crop_noise': crop 2/3), as in the reference. The geometric ops
    share one bilinear read: each image's coordinates and fill are those of its drawn op (the
    identity for noise), so the cost is one sampling of the batch whatever the strategy.
    """
    ops = parse_strategy(strategy)
    if not ops:
        return images
    n, height, width, channels = images.shape
    choice_key, *op_keys = jax.random.split(key, 1 + len(OPS))
    choice = jnp.asarray([OPS.index(op) for op in ops])[jax.random.randint(choice_key, (n,), 0, len(ops))]

    out = images
    geometric = [op for op in OPS if op in ops and op != "noise"]
    if geometric:
        rows, cols = _output_grid(height, width)
        coords = jnp.broadcast_to(jnp.stack([rows, cols], axis=-1), (n, height, width, 2))
        fill = jnp.zeros((n, channels), images.dtype)
        for op in geometric:
            op_coords, op_fill = _random_plan(op, op_keys[OPS.index(op)], images)
            chosen = choice == OPS.index(op)
            coords = jnp.where(chosen[:, None, None, None], op_coords, coords)
            fill = jnp.where(chosen[:, None], op_fill, fill)
        out = _sample(images, coords, fill)
    if "noise" in ops:
        noisy = noise(op_keys[OPS.index("noise")], images)
        out = jnp.where((choice == OPS.index("noise"))[:, None, None, None], noisy, out)
    return out

