"""Building blocks shared by every network family.

Two choices here matter for the paper's numbers and for speed:

* **PyTorch-default initialisation.** The paper's results were obtained with PyTorch's default
  `Conv2d`/`Linear` init: weights and biases uniform in +-1/sqrt(fan_in) (kaiming_uniform with
  a=sqrt(5) reduces to exactly that). Flax's defaults (lecun normal, zero bias) give different
  gradient statistics at the random networks gradient matching samples, so we reproduce PyTorch's.
* **Convolution with its own derivative rules** (`dcjax.nets.convolution`): weight and input
  gradients in the forms XLA runs fast (batched matmuls when vmapped over classes, forward
  convolutions inside CPU loops) rather than its slow grouped or in-loop convolutions.
"""
from __future__ import annotations

from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcjax.errors import ConfigError
from dcjax.nets.conv_instance_norm import conv_instance_norm
from dcjax.nets.convolution import MATMUL_GRAD_IMPLS, conv2d, is_thin, uses_cpu_forms
from dcjax.nets.instance_norm import instance_norm
from dcjax.nets.manual_axes import varying_alike


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
    def __call__(self, x: jax.Array, kernel_only: bool = False) -> jax.Array:
        """The convolution of `x`; with `kernel_only`, its kernel, for a layer that computes the
        convolution itself (`InstanceNorm`'s fused first block); the parameters are the same."""
        _check_map_size(x, self.kernel_size - 2 * self.padding,
                        f"a {self.kernel_size}x{self.kernel_size} convolution with padding {self.padding}")
        fan_in = x.shape[-1] * self.kernel_size ** 2
        init = torch_uniform_init(fan_in)
        kernel = self.param("kernel", init, (self.kernel_size, self.kernel_size, x.shape[-1], self.features))
        bias = self.param("bias", init, (self.features,)) if self.use_bias else None
        if kernel_only:
            return kernel
        y = conv2d(x, kernel, self.padding, self.stride, self.impl)
        if bias is not None and not self.bias_cancelled:
            y = y + bias
        return y

    def fuses_with_instance_norm(self, x: jax.Array) -> bool:
        """Whether `InstanceNorm()(x, conv=self)` may compute this convolution and the norm as one
        operation: on CPU (where it was measured faster), a thin stride-1 convolution (few input
        channels) whose bias the norm cancels."""
        return (uses_cpu_forms() and self.stride == 1 and self.impl in MATMUL_GRAD_IMPLS
                and (self.bias_cancelled or not self.use_bias) and x.ndim == 4
                and is_thin(x.shape[-1], (self.kernel_size, self.kernel_size)))


class InstanceNorm(nn.Module):
    """Affine instance normalisation of NHWC maps (PyTorch `GroupNorm(C, C)`, eps 1e-5); parameters
    `scale` (ones) and `bias` (zeros) per channel, as Flax's GroupNorm names them."""

    @nn.compact
    def __call__(self, x: jax.Array, conv: Conv | None = None) -> jax.Array:
        """The normalised `x`; with `conv` (for which `conv.fuses_with_instance_norm(x)`), the normalised
        convolution of `x`, computed with the convolution as one operation
        (`dcjax.nets.conv_instance_norm`): the first block of a network on 1- or 3-channel images."""
        if conv is None:
            scale, bias = self._affine(x.shape[-1])
            return instance_norm(*varying_alike(x, scale, bias))
        if not conv.fuses_with_instance_norm(x):
            raise ValueError(f"{conv} cannot be fused with instance norm on a {x.shape} input")
        kernel = conv(x, kernel_only=True)
        scale, bias = self._affine(kernel.shape[-1])
        return conv_instance_norm(x, kernel, scale, bias, conv.padding)

    def _affine(self, channels: int) -> tuple[jax.Array, jax.Array]:
        return (self.param("scale", nn.initializers.ones, (channels,)),
                self.param("bias", nn.initializers.zeros, (channels,)))


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
