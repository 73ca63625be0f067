"""The reference's VGG11 and VGG11BN (networks.py:212-254), one module with a `norm` field."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Conv, Dense, first_layer_padding, norm_layer, pool

# networks.py VGG._make_layers: `GroupNorm(x, x)` ("instancenorm", VGG11) or BatchNorm2d (VGG11BN); no norm-free VGG.
VGG_NORMS = ("instance", "batch")

# cfg_vgg['VGG11'] (networks.py:212-254): conv widths, "M" = 2x2 max-pool.
VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG-11: [conv3x3 -> norm -> relu] per width of VGG11_CFG, max-pools at "M", then one dense layer.

    The first convolution pads 28x28 inputs by 3 (networks.py VGG._make_layers:
    `padding=3 if self.channel==1 and ic==0 else 1`, decided here by size: see
    `first_layer_padding`), turning 28x28 into 32x32, so after five pools 28x28 and 32x32 inputs of
    any channel count leave 512x1x1 = 512 features for the Linear(512, classes)
    classifier (`nn.Linear(512, num_classes)`). The reference's final AvgPool2d(1, 1) is the
    identity and is left out. `features_only` returns the 512 features (the reference's `embed`).
    """
    num_classes: int
    norm: str = "instance"

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self(x, train=train, features_only=True)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        padding = first_layer_padding(x.shape[-3:], 1)
        for item in VGG11_CFG:
            if item == "M":
                x = pool(x, "max")
                continue
            x = Conv(item, 3, padding=padding)(x)
            x = nn.relu(norm_layer(self.norm, train)(x))
            padding = 1
        x = x.reshape(x.shape[:-3] + (-1,))
        if features_only:
            return x
        return Dense(self.num_classes)(x)
