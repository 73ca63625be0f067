"""The reference's LeNet (networks.py:115-136): two 5x5 conv + max-pool stages, then 400->120->84->classes."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Conv, Dense, first_layer_padding, norm_layer, pool

# The reference's LeNet has no normalisation ("none"); "instance" and "batch" put a norm after each
# convolution, as AlexNetBN does, so that LeNet has the instance/batch-norm pair every family has.
LENET_NORMS = ("none", "instance", "batch")


class LeNet(nn.Module):
    """conv5(6) -> relu -> maxpool2 -> conv5(16) -> relu -> maxpool2 -> fc 120 -> fc 84 -> fc classes.

    The first convolution pads 28x28 inputs by 2 and others not at all (networks.py LeNet:
    `padding=2 if channel==1 else 0`, decided here by size: see `first_layer_padding`), so 28x28 and
    32x32 inputs of any channel count give 16x5x5 = 400 features. `features_only` returns the 84 features the last layer classifies
    (the reference's LeNet has no `embed`; this is the input of the classifier, as for the others).
    """
    num_classes: int
    norm: str = "none"

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self(x, train=train, features_only=True)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        first_padding = first_layer_padding(x.shape[-3:], 0)
        for features, padding in ((6, first_padding), (16, 0)):
            x = Conv(features, 5, padding=padding)(x)
            x = nn.relu(norm_layer(self.norm, train)(x))
            x = pool(x, "max")
        x = x.reshape(x.shape[:-3] + (-1,))
        x = nn.relu(Dense(120)(x))
        x = nn.relu(Dense(84)(x))
        if features_only:
            return x
        return Dense(self.num_classes)(x)
