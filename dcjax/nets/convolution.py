"""2-D convolution whose derivatives keep to the forms XLA runs fast, on CPU inside loops too.

Gradient matching needs one weight gradient per class, i.e. the weight gradient of a convolution
under `jax.vmap` over classes. XLA lowers that batched weight-gradient convolution to a slow grouped
convolution (measured ~3x slower for the whole matching step on CPU), so on accelerators, where the
classes are vmapped, the weight gradient is one 2-D matmul per kernel offset (batched matmuls under
vmap). On CPU the classes are unrolled (or mapped) and every SGD step runs inside a loop, where
XLA:CPU runs its own weight-gradient convolution as a naive loop and its input gradient 3-5x slower
than outside loops; there the weight gradient is a forward convolution in canonical layouts
(`_kernel_gradient_conv`, the matmuls again when vmapped) and the input gradient the
flipped-kernel forward convolution (`input_gradient`). Thin first layers use one im2col matmul.
Values equal `lax.conv_general_dilated`'s gradients up to float rounding (tested), and every rule
is itself differentiable in the same forms, as the second-order matching loss needs.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
from jax import lax

from dcjax.nets import winograd
from dcjax.nets.manual_axes import varying_alike

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


def _xla_conv(x: jax.Array, kernel: jax.Array, padding: int, stride: int) -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding), (padding, padding)],
        dimension_numbers=_DIMENSION_NUMBERS)


def uses_cpu_forms() -> bool:
    """Whether a network traced now takes its CPU derivative forms (the flipped-kernel input gradient,
    the forward-convolution weight gradient, the fused first block). Decided when the network is
    traced, by JAX's default backend, so that autodiff traces one form, not every platform's."""
    return jax.default_backend() == "cpu"


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
    """Weight gradient (kh, kw, in, out) of a stride-1 convolution, in the form that runs fast here.

    When the patch (in * kh * kw) is small, as for the first layer of a grey-scale network, the
    kernel offsets are concatenated into one im2col matrix and a single matmul gives the gradient
    (3x faster than kh * kw thin ones). Otherwise, on CPU, `_kernel_gradient_conv`: inside loops
    35-45 % faster than the matmuls for 10-100 images of 7x7 to 16x16x128 maps (for one image
    0.2 ms slower), a whole SGD step of ConvNet-128 on 100 images ~20 % faster
    (benchmarks/explore/weight_gradient_in_loops.py); elsewhere `_kernel_gradient_matmuls`, which
    vmaps to batched matmuls (`uses_cpu_forms`).
    """
    cin, cout = x.shape[-1], dy.shape[-1]
    if is_thin(cin, kernel_hw):
        patches = im2col(x, padding, kernel_hw)
        grad = lax.dot_general(patches.reshape(-1, patches.shape[-1]), dy.reshape(-1, cout), _CONTRACT_ROWS)
        return grad.reshape(kernel_hw + (cin, cout))
    if uses_cpu_forms():
        return _kernel_gradient_conv(*varying_alike(x, dy), padding, kernel_hw)
    return _kernel_gradient_matmuls(x, dy, padding, kernel_hw)


def _kernel_gradient_matmuls(x: jax.Array, dy: jax.Array, padding: int, kernel_hw: tuple[int, int]) -> jax.Array:
    """The weight gradient as one 2-D matmul per kernel offset, `shifted_input^T @ dy` with the batch
    and spatial axes flattened into one contraction axis (2.3x faster than the equivalent 4-D
    einsum, which XLA does not lower to a single GEMM)."""
    cin, cout = x.shape[-1], dy.shape[-1]
    dy_rows = dy.reshape(-1, cout)
    grads = [lax.dot_general(shifted.reshape(-1, cin), dy_rows, _CONTRACT_ROWS)
             for shifted in _shifted_inputs(x, padding, kernel_hw)]
    return jnp.stack(grads).reshape(kernel_hw + (cin, cout))


def _transposed_as_stored(x: jax.Array, permutation: tuple[int, ...]) -> jax.Array:
    """`x.transpose(permutation)`, made from `x` as stored.

    Left alone, XLA:CPU fuses x's producer (a layer's norm, ReLU and pooling) into the transposing
    copy, which then recomputes it in the transposed order, reading the producer's inputs across
    images (~49 ms for a 100x16x16x128 map against ~5 ms for a plain copy; optimization barriers
    are removed before fusion on CPU). A conditional is a fusion boundary: both branches are the
    same transpose, and the predicate reads one element of x, so XLA can fold neither away.
    """
    transpose = lambda x: x.transpose(permutation)
    first = x[(0,) * x.ndim]
    return lax.cond(first == first, transpose, transpose, x)


def _kernel_gradient_as_forward_conv(x: jax.Array, dy: jax.Array, padding: int) -> jax.Array:
    """dW[i, j, c, o] = sum over n, h, w of x_padded[n, h + i, w + j, c] * dy[n, h, w, o], written as
    a forward convolution in XLA's canonical layouts: the input channels as the batch, the images as
    the features, `dy` as a kernel the size of the output map.

    The explicit transposes matter on CPU: XLA:CPU runs a convolution in these canonical layouts
    with its Eigen kernels, in loops as well, but leaves the weight-gradient convolution JAX's
    autodiff writes (images and channels swapped through the dimension numbers) to a naive loop
    inside a loop body (13 s instead of 34 ms for 100 14x14x128 maps).
    """
    lhs = _transposed_as_stored(x, (3, 1, 2, 0))   # (in, H, W, N): batch = channels, features = images
    rhs = dy.transpose(1, 2, 0, 3)                  # (H', W', N, out): a kernel over the output map
    grad = lax.conv_general_dilated(lhs, rhs, (1, 1), [(padding, padding), (padding, padding)],
                                    dimension_numbers=_DIMENSION_NUMBERS)   # (in, kh, kw, out)
    return grad.transpose(1, 2, 0, 3)


def _kernel_gradient_conv(x: jax.Array, dy: jax.Array, padding: int, kernel_hw: tuple[int, int]) -> jax.Array:
    """The CPU weight gradient: `_kernel_gradient_as_forward_conv`, differentiated by the rule in
    `_kernel_gradient_conv_rules`; under `jax.vmap` (classes or networks vmapped on CPU) the
    per-offset matmuls instead, since a vmapped convolution is a slow grouped one there."""
    return _kernel_gradient_conv_rules(padding, kernel_hw)(x, dy)


@functools.lru_cache(maxsize=None)
def _kernel_gradient_conv_rules(padding: int, kernel_hw: tuple[int, int]) -> Callable:
    """`(x, dy) -> dW` for one padding and kernel size: a `custom_vjp` around `custom_vmap`
    functions (JAX's way to customise both), built once per size and cached."""
    def matmuls(x, dy):
        return _kernel_gradient_matmuls(x, dy, padding, kernel_hw)

    def batched_axes(in_batched):
        return tuple(0 if batched else None for batched in in_batched)

    @jax.custom_batching.custom_vmap
    def gradient(x, dy):
        return _kernel_gradient_as_forward_conv(x, dy, padding)

    @gradient.def_vmap
    def _(axis_size, in_batched, x, dy):
        return jax.vmap(matmuls, in_axes=batched_axes(in_batched))(x, dy), True

    @jax.custom_batching.custom_vmap
    def transpose(x, dy, kernel_bar):
        # <kernel_bar, dW(x, dy)> = <conv(x, kernel_bar), dy>: in x the convolution's input gradient
        # (of output gradient dy, kernel kernel_bar), in dy the forward convolution; both keep to
        # the forms XLA:CPU runs fast in loops (the second-order matching loss needs this rule).
        return input_gradient(x, dy, kernel_bar, padding), _xla_conv(x, kernel_bar, padding, 1)

    @transpose.def_vmap
    def _(axis_size, in_batched, x, dy, kernel_bar):
        def matmuls_vjp(x, dy, kernel_bar):
            return jax.vjp(matmuls, x, dy)[1](kernel_bar)
        return jax.vmap(matmuls_vjp, in_axes=batched_axes(in_batched))(x, dy, kernel_bar), (True, True)

    @jax.custom_vjp
    def differentiable(x, dy):
        return gradient(x, dy)

    differentiable.defvjp(lambda x, dy: (gradient(x, dy), (x, dy)),
                          lambda residuals, kernel_bar: transpose(*residuals, kernel_bar))
    return differentiable


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
    is chosen when the network is traced (`uses_cpu_forms`).
    """
    def xla_gradient(x, dy, kernel):
        _, vjp = jax.vjp(lambda x_: _xla_conv(x_, kernel, padding, 1), x)
        return vjp(dy)[0]

    def flipped(x, dy, kernel):
        dy, kernel = varying_alike(dy, kernel)
        return _transposed_conv(dy, kernel, padding)

    if x.shape[-1] <= _FLIPPED_KERNEL_MIN_CHANNELS or not uses_cpu_forms():
        return xla_gradient(x, dy, kernel)
    return flipped(x, dy, kernel)


def _matmul_grad_conv_bwd(padding, residuals, dy):
    x, kernel = residuals
    dx = input_gradient(x, dy, kernel, padding)
    return dx, _kernel_gradient(x, dy, padding, kernel.shape[:2])


_matmul_grad_conv.defvjp(_matmul_grad_conv_fwd, _matmul_grad_conv_bwd)

CONV_IMPLS = ("matmul_grad", "xla", "winograd")
# The forms whose convolutions outside Winograd's reach are 'matmul_grad' ones (and whose thin
# first block may fuse with its instance norm on CPU).
MATMUL_GRAD_IMPLS = ("matmul_grad", "winograd")


def conv2d(x: jax.Array, kernel: jax.Array, padding: int, stride: int = 1,
           impl: str = "matmul_grad") -> jax.Array:
    """NHWC x HWIO convolution; `impl` picks how it and its gradients are computed: 'matmul_grad'
    (see the module doc), 'xla' (XLA's own), 'winograd' (`dcjax.nets.winograd` where it applies,
    'matmul_grad' elsewhere)."""
    if impl == "winograd" and winograd.applies(x.shape, kernel.shape, padding, stride):
        return winograd.winograd_conv(x, kernel)
    if impl in MATMUL_GRAD_IMPLS and stride == 1:
        return _matmul_grad_conv(*varying_alike(x, kernel), padding)
    return _xla_conv(x, kernel, padding, stride)
