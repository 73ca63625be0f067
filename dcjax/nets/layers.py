"""Building blocks shared by every network family.

Two choices here matter for the paper's numbers and for speed:

* **PyTorch-default initialisation.** The paper's results were obtained with PyTorch's default
  `Conv2d`/`Linear` init: weights and biases uniform in +-1/sqrt(fan_in) (kaiming_uniform with
  a=sqrt(5) reduces to exactly that). Flax's defaults (lecun normal, zero bias) give different
  gradient statistics at the random networks gradient matching samples, so we reproduce PyTorch's.
* **Convolution with a matmul weight gradient.** Gradient matching needs one weight gradient per
  class, i.e. the weight gradient of a convolution under `jax.vmap` over classes. XLA's CPU
  backend lowers that batched weight-gradient convolution to a slow grouped convolution (measured
  ~3x slower for the whole matching step). `conv2d` keeps XLA's convolution for the forward pass and
  the input gradient, and writes the weight gradient as one 2-D matmul per kernel offset (or one
  im2col matmul for thin inputs), which vmaps to batched matmuls. Values are identical
  to `lax.conv_general_dilated`'s gradient up to float rounding (tested), and the rule is itself
  differentiable, as the second-order matching loss needs.
"""
from __future__ import annotations

import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from dcjax.errors import ConfigError
from dcjax.nets.instance_norm import InstanceNorm
from dcjax.nets.manual_axes import varying_alike

_DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")


class InputTooSmall(ConfigError):
    """A layer's input feature map is smaller than its window (the image is too small for the network)."""


def _check_map_size(x: jax.Array, window: int, what: str) -> None:
    """Raise InputTooSmall unless x's (H, W) map is at least window x window (checked at trace time).

    Without this, XLA silently returns an empty map and the classifier reads zero features.
    """
    height, width = x.shape[-3], x.shape[-2]
    if min(height, width) < window:
        raise InputTooSmall(f"{what} needs a feature map of at least {window}x{window}, got {height}x{width}")


# The reference pads the first convolution of 28x28 (MNIST-sized) inputs by 2 more pixels per side
# than that of 32x32 ones, so that a 28x28 image flows through every network as a 32x32 one: ConvNet
# and VGG11 pad by 3 instead of 1, LeNet by 2 instead of 0, AlexNet by 4 instead of 2 (networks.py).
_MNIST_SIZE = (28, 28)
_MNIST_EXTRA_PADDING = 2


def first_layer_padding(image_shape: tuple[int, ...], padding: int) -> int:
    """Padding of a network's first convolution: `padding`, plus 2 for 28x28 inputs.

    Decided by the image size, not by the channel count as the reference's code writes it
    (`padding=3 if channel == 1 else 1`): every 1-channel dataset of the reference is 28x28 and
    every other one 32x32 or larger, so both rules build the same networks there, and the
    reference's own shape bookkeeping is by size (ConvNet treats `im_size == 28` as 32x32; its
    LeNet, AlexNet and VGG11 classifier widths are those of a 32x32 map). The channel rule breaks
    on other inputs (28x28x3 resized MNIST, 32x32x1 grey CIFAR give other map sizes than the
    classifier expects); the size rule gives 28x28x1, 28x28x3, 32x32x1 and 32x32x3 inputs the same
    32x32-equivalent feature maps in ConvNet, LeNet, AlexNet and VGG11. ResNet18 pads by 1 always.
    """
    extra = _MNIST_EXTRA_PADDING if tuple(image_shape[:2]) == _MNIST_SIZE else 0
    return padding + extra


def torch_uniform_init(fan_in: int) -> Callable:
    """Initialiser drawing from U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default."""
    bound = 1.0 / max(fan_in, 1) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _xla_conv(x: jax.Array, kernel: jax.Array, padding: int, stride: int) -> jax.Array:
    return lax.conv_general_dilated(
        x, kernel, (stride, stride), [(padding, padding), (padding, padding)],
        dimension_numbers=_DIMENSION_NUMBERS)


_IM2COL_MAX_PATCH = 64
_FLIPPED_KERNEL_MIN_CHANNELS = 1
_CONTRACT_ROWS = (((0,), (0,)), ((), ()))


def _kernel_gradient(x: jax.Array, dy: jax.Array, padding: int, kernel_hw: tuple[int, int]) -> jax.Array:
    """Weight gradient (kh, kw, in, out) of a stride-1 convolution, written as plain matmuls.

    Each kernel offset contributes `shifted_input^T @ dy` with the batch and spatial axes flattened
    into one contraction axis of a 2-D `dot_general` (measured 2.3x faster on CPU than the
    equivalent 4-D einsum, which XLA does not lower to a single GEMM). When the patch
    (in * kh * kw) is small, as for the first layer of a grey-scale network, the offsets are
    concatenated into one im2col matrix and a single matmul replaces kh * kw thin ones (3x faster).
    """
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    height, width = dy.shape[1], dy.shape[2]
    cin, cout = x.shape[-1], dy.shape[-1]
    dy_rows = dy.reshape(-1, cout)
    offsets = [(i, j) for i in range(kernel_hw[0]) for j in range(kernel_hw[1])]

    def shifted(i, j):
        return xp[:, i:i + height, j:j + width, :]

    if cin * len(offsets) <= _IM2COL_MAX_PATCH:
        patches = jnp.concatenate([shifted(i, j) for i, j in offsets], axis=-1)
        grad = lax.dot_general(patches.reshape(-1, patches.shape[-1]), dy_rows, _CONTRACT_ROWS)
        return grad.reshape(kernel_hw + (cin, cout))
    grads = [lax.dot_general(shifted(i, j).reshape(-1, cin), dy_rows, _CONTRACT_ROWS) for i, j in offsets]
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


def _input_gradient(x: jax.Array, dy: jax.Array, kernel: jax.Array, padding: int) -> jax.Array:
    """Input gradient of a stride-1 convolution of `x`: on CPU, for inputs of more than
    _FLIPPED_KERNEL_MIN_CHANNELS channels, `_transposed_conv` (a forward convolution with the flipped
    kernel, whose own derivatives are a forward convolution and a matmul weight gradient);
    elsewhere XLA's own input gradient.

    Both are the same sums. XLA:CPU runs its input-gradient convolution 3-5x slower inside a loop
    body (`lax.scan`) than outside one (measured 296 vs 72 ms for 100 16x16x128 maps; jax-ml/jax#12868),
    while a forward convolution runs at the same speed in and out of loops; every SGD step of the
    inner network update and of evaluation runs inside such loops, and so do the matching steps,
    whose image gradient differentiates these input gradients once more. For 1-channel inputs the
    flipped form is the slower one (94 vs 16 ms in a loop), hence the channel threshold.
    """
    def xla_gradient(x, dy, kernel):
        _, vjp = jax.vjp(lambda x_: _xla_conv(x_, kernel, padding, 1), x)
        return vjp(dy)[0]

    def flipped(x, dy, kernel):
        dy, kernel = varying_alike(dy, kernel)
        return _transposed_conv(dy, kernel, padding)

    if x.shape[-1] <= _FLIPPED_KERNEL_MIN_CHANNELS:
        return xla_gradient(x, dy, kernel)
    return lax.platform_dependent(x, dy, kernel, cpu=flipped, default=xla_gradient)


def _matmul_grad_conv_bwd(padding, residuals, dy):
    x, kernel = residuals
    dx = _input_gradient(x, dy, kernel, padding)
    return dx, _kernel_gradient(x, dy, padding, kernel.shape[:2])


_matmul_grad_conv.defvjp(_matmul_grad_conv_fwd, _matmul_grad_conv_bwd)

CONV_IMPLS = ("matmul_grad", "xla")


def conv2d(x: jax.Array, kernel: jax.Array, padding: int, stride: int = 1,
           impl: str = "matmul_grad") -> jax.Array:
    """NHWC x HWIO convolution; `impl` picks how its weight gradient is computed (see module doc)."""
    if impl == "matmul_grad" and stride == 1:
        return _matmul_grad_conv(*varying_alike(x, kernel), padding)
    return _xla_conv(x, kernel, padding, stride)


class Conv(nn.Module):
    """2-D convolution with PyTorch-default init and a selectable weight-gradient formulation.

    `bias_cancelled`: the layer after this one subtracts each channel's mean over the map (instance
    norm), which removes any per-channel constant, so adding the bias changes nothing downstream.
    The bias then keeps its parameter (the reference's parameter count and initialisation) but is
    not added: its gradient is exactly zero rather than rounding noise, and one full pass over the
    output map is saved (~7% of an SGD step of ConvNet-128 on CPU, benchmarks/explore/NOTES.md).
    """
    features: int
    kernel_size: int = 3
    padding: int = 1
    stride: int = 1
    use_bias: bool = True
    impl: str = "matmul_grad"
    bias_cancelled: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        _check_map_size(x, self.kernel_size - 2 * self.padding,
                        f"a {self.kernel_size}x{self.kernel_size} convolution with padding {self.padding}")
        fan_in = x.shape[-1] * self.kernel_size ** 2
        init = torch_uniform_init(fan_in)
        kernel = self.param("kernel", init, (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        y = conv2d(x, kernel, self.padding, self.stride, self.impl)
        if self.use_bias:
            bias = self.param("bias", init, (self.features,))
            if not self.bias_cancelled:
                y = y + bias
        return y


class Dense(nn.Module):
    """Fully connected layer with PyTorch-default init."""
    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = torch_uniform_init(x.shape[-1])
        kernel = self.param("kernel", init, (x.shape[-1], self.features))
        return x @ kernel + self.param("bias", init, (self.features,))


NORMS = ("none", "batch", "layer", "instance", "group")
ACTIVATIONS = ("relu", "sigmoid", "leaky_relu", "swish")
POOLINGS = ("none", "avg", "max")


def norm_layer(norm: str, train: bool) -> Callable[[jax.Array], jax.Array]:
    """The reference's normalisations, eps 1e-5 as in PyTorch.

    'instance' is GroupNorm with one channel per group (affine), as in the reference, written as
    `InstanceNorm` (a faster backward pass than Flax's GroupNorm, same values); 'layer' normalises
    over (H, W, C) with an elementwise (H, W, C) affine; 'batch' uses PyTorch's running statistics
    momentum 0.1 (Flax momentum 0.9).
    """
    if norm == "none":
        return lambda x: x
    if norm == "instance":
        return InstanceNorm()
    if norm == "group":
        return nn.GroupNorm(num_groups=4, epsilon=1e-5)
    if norm == "layer":
        return nn.LayerNorm(epsilon=1e-5, reduction_axes=(-3, -2, -1), feature_axes=(-3, -2, -1))
    if norm == "batch":
        return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)
    raise ValueError(f"unknown norm {norm!r}; choose one of {NORMS}")


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """relu, sigmoid, leaky relu (slope 0.01, PyTorch's default) or swish (x * sigmoid(x))."""
    table = {"relu": nn.relu, "sigmoid": nn.sigmoid,
             "leaky_relu": lambda x: nn.leaky_relu(x, 0.01), "swish": nn.swish}
    if name not in table:
        raise ValueError(f"unknown activation {name!r}; choose one of {ACTIVATIONS}")
    return table[name]


def pool(x: jax.Array, name: str, window: int = 2) -> jax.Array:
    """window x window average or max pooling with stride window (2x2 by default), or none.

    Average pooling is written as the mean of the window's window**2 strided slices (rows and columns
    that do not fill a window dropped, as PyTorch's AvgPool2d does) rather than XLA's reduce-window:
    the same sums, but on XLA:CPU both directions then fuse with their neighbours, where
    reduce-window and its transpose each make a full pass over the map (an SGD step of ConvNet-128 on
    100 28x28 images: ~209 -> ~195 ms; benchmarks/explore/NOTES.md).
    """
    if name == "none":
        return x
    if name not in ("avg", "max"):
        raise ValueError(f"unknown pooling {name!r}; choose one of {POOLINGS}")
    _check_map_size(x, window, f"a {window}x{window} {name} pooling")
    if name == "avg":
        rows, cols = (x.shape[-3] // window) * window, (x.shape[-2] // window) * window
        x = x[..., :rows, :cols, :]
        return sum(x[..., i::window, j::window, :] for i in range(window) for j in range(window)) / window ** 2
    return nn.max_pool(x, (window, window), strides=(window, window))
