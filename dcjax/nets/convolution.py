"""2-D convolution with a matmul weight gradient, and the input-gradient form XLA:CPU runs fast in loops.

Gradient matching needs one weight gradient per class, i.e. the weight gradient of a convolution
under `jax.vmap` over classes. XLA's CPU backend lowers that batched weight-gradient convolution to
a slow grouped convolution (measured ~3x slower for the whole matching step). `conv2d` keeps XLA's
convolution for the forward pass and the input gradient, and writes the weight gradient as one 2-D
matmul per kernel offset (or one im2col matmul for thin inputs), which vmaps to batched matmuls.
Values are identical to `lax.conv_general_dilated`'s gradient up to float rounding (tested), and
the rule is itself differentiable, as the second-order matching loss needs.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from dcjax.nets.manual_axes import varying_alike

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _xla_conv(x: jax.Array, kernel: jax.Array, padding: int, stride: int) -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding), (padding, padding)],
        dimension_numbers=_DIMENSION_NUMBERS)


IM2COL_MAX_PATCH = 64   # largest patch (in_channels * kh * kw) handled as one im2col matrix
_FLIPPED_KERNEL_MIN_CHANNELS = 1
_CONTRACT_ROWS = (((0,), (0,)), ((), ()))


def is_thin(in_channels: int, kernel_hw: tuple[int, int]) -> bool:
    """Whether a convolution's patch is small enough to be worked with as one im2col matrix."""
    return in_channels * kernel_hw[0] * kernel_hw[1] <= IM2COL_MAX_PATCH


def _shifted_inputs(x: jax.Array, padding: int, kernel_hw: tuple[int, int]) -> list[jax.Array]:
    """The padded input's window at each kernel offset (row-major), each the output map's size."""
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    height, width = xp.shape[1] - kernel_hw[0] + 1, xp.shape[2] - kernel_hw[1] + 1
    return [xp[:, i:i + height, j:j + width, :] for i in range(kernel_hw[0]) for j in range(kernel_hw[1])]


def im2col(x: jax.Array, padding: int, kernel_hw: tuple[int, int]) -> jax.Array:
    """(N, H', W', kh*kw*C) patches of a stride-1 convolution, in the order of an HWIO kernel's reshape."""
    return jnp.concatenate(_shifted_inputs(x, padding, kernel_hw), axis=-1)


def _kernel_gradient(x: jax.Array, dy: jax.Array, padding: int, kernel_hw: tuple[int, int]) -> jax.Array:
    """Weight gradient (kh, kw, in, out) of a stride-1 convolution, written as plain matmuls.

    Each kernel offset contributes `shifted_input^T @ dy` with the batch and spatial axes flattened
    into one contraction axis of a 2-D `dot_general` (measured 2.3x faster on CPU than the
    equivalent 4-D einsum, which XLA does not lower to a single GEMM). When the patch
    (in * kh * kw) is small, as for the first layer of a grey-scale network, the offsets are
    concatenated into one im2col matrix and a single matmul replaces kh * kw thin ones (3x faster).
    """
    cin, cout = x.shape[-1], dy.shape[-1]
    dy_rows = dy.reshape(-1, cout)
    if is_thin(cin, kernel_hw):
        patches = im2col(x, padding, kernel_hw)
        grad = lax.dot_general(patches.reshape(-1, patches.shape[-1]), dy_rows, _CONTRACT_ROWS)
        return grad.reshape(kernel_hw + (cin, cout))
    grads = [lax.dot_general(shifted.reshape(-1, cin), dy_rows, _CONTRACT_ROWS)
             for shifted in _shifted_inputs(x, padding, kernel_hw)]
    return jnp.stack(grads).reshape(kernel_hw + (cin, cout))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _matmul_grad_conv(x: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    return _xla_conv(x, kernel, padding, 1)


def _matmul_grad_conv_fwd(x, kernel, padding):
    return _xla_conv(x, kernel, padding, 1), (x, kernel)


def _flipped_kernel_conv(dy: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    """conv(x, kernel, padding)'s input gradient for output gradient `dy`, as the forward convolution
    of `dy` with the spatially flipped, in/out-transposed kernel."""
    kh, kw = kernel.shape[:2]
    flipped = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
    pads = [(kh - 1 - padding, kh - 1 - padding), (kw - 1 - padding, kw - 1 - padding)]
    return lax.conv_general_dilated(dy, flipped, (1, 1), pads, dimension_numbers=_DIMENSION_NUMBERS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _transposed_conv(dy: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    return _flipped_kernel_conv(dy, kernel, padding)


def _transposed_conv_fwd(dy, kernel, padding):
    return _flipped_kernel_conv(dy, kernel, padding), (dy, kernel)


def _transposed_conv_bwd(padding, residuals, dx_bar):
    # <dx_bar, T_W(dy)> = <conv_W(dx_bar), dy>: the transpose in dy is the forward convolution, the
    # derivative in W the forward convolution's weight gradient (both fast inside loops).
    dy, kernel = residuals
    return _xla_conv(dx_bar, kernel, padding, 1), _kernel_gradient(dx_bar, dy, padding, kernel.shape[:2])


_transposed_conv.defvjp(_transposed_conv_fwd, _transposed_conv_bwd)


def input_gradient(x: jax.Array, dy: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    """Input gradient of a stride-1 convolution of `x`: on CPU, for inputs of more than
    _FLIPPED_KERNEL_MIN_CHANNELS channels, `_transposed_conv` (a forward convolution with the flipped
    kernel, whose own derivatives are a forward convolution and a matmul weight gradient);
    elsewhere XLA's own input gradient.

    Both are the same sums. XLA:CPU runs its input-gradient convolution 3-5x slower inside a loop
    body (`lax.scan`) than outside one (measured 296 vs 72 ms for 100 16x16x128 maps; jax-ml/jax#12868),
    while a forward convolution runs at the same speed in and out of loops; every SGD step of the
    inner network update and of evaluation runs inside such loops, and so do the matching steps,
    whose image gradient differentiates these input gradients once more. For 1-channel inputs the
    flipped form is the slower one (94 vs 16 ms in a loop), hence the channel threshold. The form
    is chosen when the network is traced, by JAX's default backend, as the fused first block's is
    (`Conv.fuses_with_instance_norm`), so that autodiff traces one form, not both.
    """
    def xla_gradient(x, dy, kernel):
        _, vjp = jax.vjp(lambda x_: _xla_conv(x_, kernel, padding, 1), x)
        return vjp(dy)[0]

    def flipped(x, dy, kernel):
        dy, kernel = varying_alike(dy, kernel)
        return _transposed_conv(dy, kernel, padding)

    if x.shape[-1] <= _FLIPPED_KERNEL_MIN_CHANNELS or jax.default_backend() != "cpu":
        return xla_gradient(x, dy, kernel)
    return flipped(x, dy, kernel)


def _matmul_grad_conv_bwd(padding, residuals, dy):
    x, kernel = residuals
    dx = input_gradient(x, dy, kernel, padding)
    return dx, _kernel_gradient(x, dy, padding, kernel.shape[:2])


_matmul_grad_conv.defvjp(_matmul_grad_conv_fwd, _matmul_grad_conv_bwd)

CONV_IMPLS = ("matmul_grad", "xla")


def conv2d(x: jax.Array, kernel: jax.Array, padding: int, stride: int = 1,
           impl: str = "matmul_grad") -> jax.Array:
    """NHWC x HWIO convolution; `impl` picks how its weight gradient is computed (see module doc)."""
    if impl == "matmul_grad" and stride == 1:
        return _matmul_grad_conv(*varying_alike(x, kernel), padding)
    return _xla_conv(x, kernel, padding, stride)
