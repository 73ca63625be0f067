"""The ConvNet family of the paper: depth x [conv 3x3 -> norm -> activation -> pool] -> dense."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Conv, Dense, activation_fn, norm_layer, pool


def first_conv_padding(image_shape: tuple[int, int, int]) -> int:
    """Padding of the first convolution: 3 for 28x28 inputs (MNIST-like), 1 otherwise.

    The reference pads 1-channel (28x28) inputs by 3 so that the feature maps match a 32x32 input
    (28 + 2*3 - 2 = 32); every other input keeps its size through the 3x3 convolutions.
    """
    return 3 if tuple(image_shape[:2]) == (28, 28) else 1


def last_norm_map_size(image_shape: tuple[int, int, int], depth: int, pooling: str) -> int:
    """Side of the feature map the last block normalises (instance/group norm need more than 2x2)."""
    size = image_shape[0] + 2 * first_conv_padding(image_shape) - 2
    if pooling != "none":
        size //= 2 ** (depth - 1)
    return size


class ConvNet(nn.Module):
    """ConvNet-W-D with configurable norm, activation and pooling (paper Tables T6-T10)."""
    num_classes: int
    width: int = 128
    depth: int = 3
    norm: str = "instance"
    activation: str = "relu"
    pooling: str = "avg"
    conv_impl: str = "matmul_grad"

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self(x, train=train, features_only=True)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        act = activation_fn(self.activation)
        padding = first_conv_padding(x.shape[-3:])
        for d in range(self.depth):
            x = Conv(self.width, 3, padding=padding if d == 0 else 1, impl=self.conv_impl)(x)
            x = norm_layer(self.norm, train)(x)
            x = act(x)
            x = pool(x, self.pooling)
        x = x.reshape(x.shape[:-3] + (-1,))
        if features_only:
            return x
        return Dense(self.num_classes)(x)
