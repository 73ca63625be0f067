"""The reference's ResNet-18 family (networks.py:264-484): ResNet18(BN) and ResNet18(BN)_AP."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Conv, Dense, norm_layer, pool

# networks.py: `GroupNorm(p, p)` ("instancenorm", the default) or BatchNorm2d ("batchnorm"); no norm-free ResNet.
RESNET_NORMS = ("instance", "batch")

# (width, stride of the stage's first block) of the four stages, two BasicBlocks each ([2, 2, 2, 2]).
_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


class BasicBlock(nn.Module):
    """conv3x3 -> norm -> relu -> conv3x3 -> norm, plus the shortcut, then relu (expansion 1).

    Every convolution is bias-free (`bias=False` throughout networks.py's ResNets). A block that
    changes width or stride gets a 1x1 conv + norm shortcut (networks.py BasicBlock). With
    `avg_pool_downsample` (networks.py BasicBlock_AP) the convolutions keep stride 1: the
    main path average-pools 2x2 after its first norm+relu when the block downsamples, and the
    shortcut is 1x1 conv -> 2x2 average pool -> norm.
    """
    features: int
    stride: int
    norm: str
    avg_pool_downsample: bool

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv_stride = 1 if self.avg_pool_downsample else self.stride
        out = Conv(self.features, 3, padding=1, stride=conv_stride, use_bias=False)(x)
        out = nn.relu(norm_layer(self.norm, train)(out))
        if self.avg_pool_downsample and self.stride != 1:
            out = pool(out, "avg")
        out = norm_layer(self.norm, train)(Conv(self.features, 3, padding=1, use_bias=False)(out))
        shortcut = x
        if self.stride != 1 or x.shape[-1] != self.features:
            shortcut = Conv(self.features, 1, padding=0, stride=conv_stride, use_bias=False)(x)
            if self.avg_pool_downsample:
                shortcut = pool(shortcut, "avg")
            shortcut = norm_layer(self.norm, train)(shortcut)
        return nn.relu(out + shortcut)


class ResNet18(nn.Module):
    """conv3x3(64) -> norm -> relu -> 4 stages of 2 BasicBlocks (64, 128, 256, 512) -> dense.

    The stem convolution pads by 1 whatever the input (networks.py: `padding=1`, unlike ConvNet
    and VGG it does not pad 28x28 up to 32x32), so:

    * ResNet18 / ResNet18BN (networks.py:379-484): stride-2 convs give 4x4 maps for both 28x28
      and 32x32 inputs; `avg_pool2d(out, 4)` leaves 512 features for Linear(512, classes).
    * ResNet18_AP / ResNet18BN_AP (`avg_pool_downsample=True`, networks.py:264-373): the 2x2
      average pools floor 28 -> 14 -> 7 -> 3, so 28x28 inputs leave 512x3x3 = 4608 features and
      32x32 inputs 512x4x4 = 8192, the reference's classifier sizes
      (`512 * 3 * 3 if channel==1 else 512 * 4 * 4`); the reference's final
      `avg_pool2d(out, kernel_size=1, stride=1)` is the identity and is left out.

    `features_only` returns the flattened features the classifier reads (the reference's `embed`).
    """
    num_classes: int
    norm: str = "instance"
    avg_pool_downsample: bool = False

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self(x, train=train, features_only=True)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        x = Conv(64, 3, padding=1, use_bias=False)(x)
        x = nn.relu(norm_layer(self.norm, train)(x))
        for features, stride in _STAGES:
            for block_stride in (stride, 1):
                x = BasicBlock(features, block_stride, self.norm, self.avg_pool_downsample)(x, train)
        if not self.avg_pool_downsample:
            x = pool(x, "avg", window=4)
        x = x.reshape(x.shape[:-3] + (-1,))
        if features_only:
            return x
        return Dense(self.num_classes)(x)
