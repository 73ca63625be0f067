"""Exploratory: ConvNet-128's 3x3 convolutions as Winograd F(2x2, 3x3) in plain jax.numpy, against
dcjax's convolutions, in a scanned SGD step (100 images) and an ipc-1 matching step (10 classes,
batch_real 64). Each variant runs in a fresh process; times are medians.

    python -m benchmarks.explore.winograd [28|32]

The formulation is now dcjax's `conv_impl='winograd'` (dcjax/nets/winograd.py); this script times
it against the default.

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
from dcjax.nets import get_model
from dcjax.nets.winograd import winograd_conv

def sgd_step_ms(side: int, conv_impl: str, epochs: int = 10) -> float:
    """ms per step of a scanned SGD update of ConvNet-128 on 100 images (one batch per epoch)."""
    channels = 1 if side == 28 else 3
    module = get_model("ConvNet", 10, (side, side, channels), conv_impl=conv_impl)
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


def matching_step_s(side: int, conv_impl: str) -> float:
    """s per ipc-1 matching step, 10 classes, batch_real 64, classes unrolled."""
    channels = 1 if side == 28 else 3
    module = get_model("ConvNet", 10, (side, side, channels), conv_impl=conv_impl)
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
        conv_impl = "winograd" if form == "winograd" else "matmul_grad"
        value = sgd_step_ms(side, conv_impl) if part == "sgd" else matching_step_s(side, conv_impl)
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
