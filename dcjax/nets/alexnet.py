"""The reference's AlexNet and AlexNetBN (networks.py:141-208), one module with a `norm` field."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Conv, Dense, first_layer_padding, norm_layer, pool

# "none" is the reference's AlexNet, "batch" its AlexNetBN (BatchNorm2d after every convolution);
# "instance" (GroupNorm with one group per channel in the same places) completes the pair.
ALEXNET_NORMS = ("none", "instance", "batch")

# (features, kernel, padding, max-pool after) of the five convolutions (networks.py:141-208); the
# first convolution's padding is decided per input (see AlexNet).
_CONVS = ((128, 5, None, True), (192, 5, 2, True), (256, 3, 1, False), (192, 3, 1, False), (192, 3, 1, True))


class AlexNet(nn.Module):
    """Five convolutions (128, 192, 256, 192, 192) with ReLU and three 2x2 max-pools, then one dense layer.

    The first 5x5 convolution pads 28x28 inputs by 4 and others by 2 (networks.py AlexNet:
    `padding=4 if channel==1 else 2`, decided here by size: see `first_layer_padding`): 28x28
    becomes 32x32, so 28x28 and 32x32 inputs of any channel count end with 192x4x4 = 3072 features
    (`nn.Linear(192 * 4 * 4, num_classes)`).
    `features_only` returns them (the reference's `embed`).
    """
    num_classes: int
    norm: str = "none"

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self(x, train=train, features_only=True)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        first_padding = first_layer_padding(x.shape[-3:], 2)
        for features, kernel, padding, max_pool in _CONVS:
            x = Conv(features, kernel, padding=first_padding if padding is None else padding)(x)
            x = nn.relu(norm_layer(self.norm, train)(x))
            if max_pool:
                x = pool(x, "max")
        x = x.reshape(x.shape[:-3] + (-1,))
        if features_only:
            return x
        return Dense(self.num_classes)(x)
