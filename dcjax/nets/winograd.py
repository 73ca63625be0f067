"""3x3 convolutions as Winograd F(2x2, 3x3) (Lavin and Gray, 2016), in plain jax.numpy.

Each 2x2 output tile of a 3x3, stride-1 convolution needs 16 multiplications per input channel
instead of 36: the convolution becomes 16 GEMMs of a quarter of the map's pixels each, 2.25x fewer
FLOPs, at the price of transforms (each input map becomes 16 quarter-size maps, each output 4 maps
back into one) that XLA runs as separate memory passes rather than inside the GEMMs. Whether the
trade wins depends on the machine's FLOP rate against its memory bandwidth: on a 2-core AMD EPYC
(Zen 4) a ConvNet-128 matching step ran ~15 % faster, on a 2-core Intel Xeon ~4 % slower
(benchmarks/explore/NOTES.md, sessions 9 and 11), so it is a choice (`conv_impl='winograd'`), not
the default. Every part is a slice, an add or a dot, so autodiff gives the weight and input
gradients and the matching loss's second order in the same form, on any backend.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# G of F(2x2, 3x3): the kernel transform U = G g G^T.
KERNEL_TRANSFORM = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], np.float32)
MIN_CHANNELS = 16   # thinner inputs (the first layer) keep the direct convolution: few FLOPs to save


def applies(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], padding: int, stride: int) -> bool:
    """Whether `winograd_conv` computes this convolution: 3x3, stride 1, padding 1 ('same'), even
    map sides (whole 2x2 tiles) and at least `MIN_CHANNELS` input channels."""
    return (tuple(kernel_shape[:2]) == (3, 3) and stride == 1 and padding == 1
            and x_shape[-3] % 2 == 0 and x_shape[-2] % 2 == 0 and x_shape[-1] >= MIN_CHANNELS)


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
    """NHWC x HWIO 3x3 convolution, stride 1, padding 1, even H and W (see `applies`): 16 GEMMs."""
    *batch, h, w, c = x.shape
    o = kernel.shape[-1]
    xp = jnp.pad(x, [(0, 0)] * len(batch) + [(1, 1), (1, 1), (0, 0)])
    axis = len(batch)
    v = [col for row in _input_transform_1d(xp, axis) for col in _input_transform_1d(row, axis + 1)]
    u = jnp.einsum("ai,ijco,bj->abco", KERNEL_TRANSFORM, kernel, KERNEL_TRANSFORM).reshape(16, c, o)
    m = [jnp.dot(vi.reshape(-1, c), u[i]).reshape(*batch, h // 2, w // 2, o) for i, vi in enumerate(v)]
    rows = [_output_transform_1d(m[4 * a:4 * a + 4], axis + 1) for a in range(4)]
    return _output_transform_1d(rows, axis)
