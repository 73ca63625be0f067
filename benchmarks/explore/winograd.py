"""Exploratory: ConvNet-128's 3x3 convolutions as Winograd F(2x2, 3x3) in plain jax.numpy, against
dcjax's convolutions, in a scanned SGD step (100 images) and an ipc-1 matching step (10 classes,
batch_real 64). Each variant runs in a fresh process; times are medians.

    python -m benchmarks.explore.winograd [28|32]

Winograd needs 16 multiplications per 2x2 output tile and input channel where the direct
convolution needs 36 (2.25x fewer FLOPs in the GEMMs), at the price of transforms: each input map
becomes 16 maps of a quarter of its size (4x its data), each output 4 maps back into one. XLA
cannot fuse the transforms into the GEMMs as hand-written Winograd kernels do, so they cost memory
passes; whether the trade wins depends on the machine's FLOP rate against its memory bandwidth
(measured results in benchmarks/explore/NOTES.md, session 9). Autodiff differentiates the
formulation itself (every part is a slice, an add or a dot), so the weight gradient, the input
gradient and the matching loss's second order all take the Winograd form too.
"""
import functools
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcjax import compilation, training
from dcjax.matching import matching_loss_and_grad
from dcjax.nets import get_model, layers

# G of F(2x2, 3x3): the kernel transform U = G g G^T (Lavin and Gray, 2016).
KERNEL_TRANSFORM = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)


def _input_transform_1d(x: jax.Array, axis: int) -> list[jax.Array]:
    """B^T applied along `axis` to stride-2 tiles of 4: 4 arrays, `axis` halved (minus the border)."""
    tiles = (x.shape[axis] - 2) // 2

    def rows(offset):
        index = [slice(None)] * x.ndim
        index[axis] = slice(offset, offset + 2 * tiles, 2)
        return x[tuple(index)]
    d0, d1, d2, d3 = rows(0), rows(1), rows(2), rows(3)
    return [d0 - d2, d1 + d2, d2 - d1, d1 - d3]


def _output_transform_1d(m: list[jax.Array], axis: int) -> jax.Array:
    """A^T along `axis`: 4 arrays -> the 2 outputs of each tile, interleaved back along `axis`."""
    m0, m1, m2, m3 = m
    y = jnp.stack([m0 + m1 + m2, m1 - m2 - m3], axis=axis + 1)
    shape = list(m0.shape)
    shape[axis] *= 2
    return y.reshape(shape)


def winograd_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """NHWC x HWIO 3x3 convolution, stride 1, padding 1, even H and W, as F(2x2, 3x3): 16 GEMMs."""
    n, h, w, c = x.shape
    o = kernel.shape[-1]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    v = [col for row in _input_transform_1d(xp, 1) for col in _input_transform_1d(row, 2)]
    u = jnp.einsum("ai,ijco,bj->abco", KERNEL_TRANSFORM, kernel, KERNEL_TRANSFORM).reshape(16, c, o)
    m = [jnp.dot(vi.reshape(-1, c), u[i]).reshape(n, h // 2, w // 2, o) for i, vi in enumerate(v)]
    rows = [_output_transform_1d(m[4 * a:4 * a + 4], 2) for a in range(4)]
    return _output_transform_1d(rows, 1)


def use_winograd() -> None:
    """Route ConvNet's wide 3x3 stride-1 convolutions with even maps through `winograd_conv`."""
    direct = layers.conv2d

    def conv2d(x, kernel, padding, stride=1, impl="matmul_grad"):
        if (stride, padding, kernel.shape[:2]) == (1, 1, (3, 3)) and x.shape[-1] >= 16 \
                and x.shape[-3] % 2 == 0 and x.shape[-2] % 2 == 0:
            return winograd_conv(x, kernel)
        return direct(x, kernel, padding, stride, impl)
    layers.conv2d = conv2d


def sgd_step_ms(side: int, epochs: int = 10) -> float:
    """ms per step of a scanned SGD update of ConvNet-128 on 100 images (one batch per epoch)."""
    channels = 1 if side == 28 else 3
    module = get_model("ConvNet", 10, (side, side, channels))
    x = jax.random.normal(jax.random.PRNGKey(0), (100, side, side, channels))
    y = jnp.arange(100) % 10
    variables = module.init(jax.random.PRNGKey(1), x[:1])
    tx = optax.sgd(0.01)

    @functools.partial(jax.jit, compiler_options=compilation.compiler_options())
    def run(v, key, x):
        return training.train_epochs(module.apply, tx, v, tx.init(v["params"]), x, y, key, epochs, 256)[0]
    jax.block_until_ready(run(variables, jax.random.PRNGKey(2), x))
    times = []
    for i in range(7):
        start = time.perf_counter()
        jax.block_until_ready(run(variables, jax.random.PRNGKey(i), x))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / epochs * 1e3


def matching_step_s(side: int) -> float:
    """s per ipc-1 matching step, 10 classes, batch_real 64, classes unrolled."""
    channels = 1 if side == 28 else 3
    module = get_model("ConvNet", 10, (side, side, channels))
    syn = jax.random.normal(jax.random.PRNGKey(0), (10, 1, side, side, channels))
    real = jax.random.normal(jax.random.PRNGKey(1), (10, 64, side, side, channels))
    params = module.init(jax.random.PRNGKey(2), syn[0])["params"]
    step = compilation.jit(lambda p, s, r: matching_loss_and_grad(module.apply, p, {}, s, r, "ours", "unroll"))
    jax.block_until_ready(step(params, syn, real))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(step(params, syn, real))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    side = int(sys.argv[1]) if len(sys.argv) > 1 else 28
    if os.environ.get("_WINOGRAD_CHILD"):
        form, part = os.environ["_WINOGRAD_CHILD"].split(":")
        if form == "winograd":
            use_winograd()
        value = sgd_step_ms(side) if part == "sgd" else matching_step_s(side)
        print(f"{value:.3f}")
        return
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 16, 16, 128))
    kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 128, 128)) / 34
    direct = jax.lax.conv_general_dilated(x, kernel, (1, 1), [(1, 1), (1, 1)],
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
    error = float(jnp.abs(winograd_conv(x, kernel) - direct).max() / jnp.abs(direct).max())
    print(f"{side}x{side}, {jax.devices()[0].device_kind}; Winograd vs direct: max error {error:.1e} of the max")
    for part, unit in (("sgd", "ms per scanned SGD step, 100 images"), ("matching", "s per matching step")):
        for form in ("direct", "winograd"):
            out = subprocess.run([sys.executable, "-m", "benchmarks.explore.winograd", str(side)],
                                 env=dict(os.environ, _WINOGRAD_CHILD=f"{form}:{part}"),
                                 capture_output=True, text=True, check=True)
            print(f"{part:9s} {form:9s} {out.stdout.split()[-1]} ({unit})")


if __name__ == "__main__":
    main()
