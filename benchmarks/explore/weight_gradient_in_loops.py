"""Exploratory: a convolution's weight gradient inside a 10-step `lax.scan` (ms per gradient), in
the forms dcjax has: the per-offset matmuls (accelerators), the forward convolution in canonical
layouts (CPU), that convolution without the conditional that keeps its transpose a plain copy,
and XLA's own weight-gradient convolution from JAX's autodiff (a naive loop inside loop bodies on
CPU: thousands of ms, so it is left out unless asked for with --xla).

    python -m benchmarks.explore.weight_gradient_in_loops [--xla]

Each form gets a fresh input map per step from an elementwise producer (as in a network, where the
previous layer's norm, ReLU and pooling make it), so XLA's fusion decisions are those of a real step.
"""
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from dcjax import compilation
from dcjax.nets.convolution import (_DIMENSION_NUMBERS, _kernel_gradient_conv, _kernel_gradient_matmuls,
                                    _xla_conv)

CHANNELS, STEPS = 128, 10


def conv_without_conditional(x, dy):
    grad = lax.conv_general_dilated(x.transpose(3, 1, 2, 0), dy.transpose(1, 2, 0, 3), (1, 1), [(1, 1), (1, 1)],
                                    dimension_numbers=_DIMENSION_NUMBERS)
    return grad.transpose(1, 2, 0, 3)


def xla_autodiff(x, dy):
    zeros = jnp.zeros((3, 3, CHANNELS, CHANNELS))
    return jax.vjp(lambda w: _xla_conv(x, w, 1, 1), zeros)[1](dy)[0]


FORMS = {
    "matmuls (accelerators)": lambda x, dy: _kernel_gradient_matmuls(x, dy, 1, (3, 3)),
    "forward conv (CPU)": lambda x, dy: _kernel_gradient_conv(x, dy, 1),
    "forward conv, no conditional": conv_without_conditional,
}


def ms_per_gradient(form, images: int, size: int) -> float:
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    xs = jax.random.normal(keys[0], (STEPS, images, size, size, CHANNELS))
    dys = jax.random.normal(keys[1], (STEPS, images, size, size, CHANNELS))

    def body(total, x_dy):
        x, dy = x_dy
        return total + form(jax.nn.relu(x * 0.5 + 0.1), dy), None   # the map comes out of a fusion

    run = compilation.jit(lambda xs, dys: lax.scan(body, jnp.zeros((3, 3, CHANNELS, CHANNELS)), (xs, dys))[0])
    jax.block_until_ready(run(xs, dys))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        jax.block_until_ready(run(xs, dys))
        times.append(time.perf_counter() - start)
    return float(np.median(times)) / STEPS * 1e3


def main() -> None:
    forms = dict(FORMS, **({"XLA's (autodiff)": xla_autodiff} if "--xla" in sys.argv else {}))
    print("images  map    " + "  ".join(f"{name:>30}" for name in forms))
    for images, size in [(100, 16), (100, 14), (100, 8), (100, 7), (64, 16), (10, 16), (1, 16)]:
        row = [ms_per_gradient(form, images, size) for form in forms.values()]
        print(f"{images:6d}  {size:2d}x{size:<2d}  " + "  ".join(f"{ms:27.2f} ms" for ms in row), flush=True)


if __name__ == "__main__":
    main()
