"""The ConvNet family of the paper: depth x [conv 3x3 -> norm -> activation -> pool] -> dense."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Conv, Dense, InstanceNorm, activation_fn, first_layer_padding, norm_layer, pool

REFERENCE_DEPTH = 3   # the reference's default ConvNet depth (utils.py get_default_convnet_setting)
MIN_NORM_MAP = 4      # smallest side of the map the last block normalises for matching to learn


def last_norm_map_size(image_shape: tuple[int, ...], depth: int | None, pooling: str) -> int:
    """Side of the feature map the last block normalises (instance/group norm need more than 2x2).

    `depth` None means the depth a ConvNet without one resolves to (`default_depth`).
    """
    if depth is None:
        return last_norm_map_size(image_shape, default_depth(image_shape, pooling), pooling)
    size = min(image_shape[:2]) + 2 * first_layer_padding(image_shape, 1) - 2
    if pooling != "none":
        size //= 2 ** (depth - 1)
    return size


def default_depth(image_shape: tuple[int, ...], pooling: str = "avg") -> int:
    """The depth of a ConvNet whose depth is not set: the reference's 3 unless the image is too small.

    Decision: the largest depth up to 3 whose last block normalises a map of at least 4x4 (1 if
    none does). That is the reference's depth 3 for every input of 16x16 or more (its 28x28, 32x32
    and 64x64 datasets, so reference parameter counts are unchanged), depth 2 for 8x8 to 15x15
    inputs (scikit-learn's 8x8 digits, the default config's dataset) and depth 1 below. Why: with
    depth 3, an 8x8 input reaches the last block as a 2x2 map, whose instance normalisation leaves
    4 values per channel; the per-class gradients then become nearly orthogonal and gradient
    matching barely learns (on digits, depth 3 trained below random real images while depth 2 beat
    them clearly; configs/digits.py). The rule lives in the network rather than in a config so that
    every caller that leaves the depth unset, config or not, gets a network that can learn; an
    explicit depth (config.net.depth, ConvNetD1..D4) is always used as given.
    """
    fits = [d for d in range(1, REFERENCE_DEPTH + 1)
            if last_norm_map_size(image_shape, d, pooling) >= MIN_NORM_MAP]
    return max(fits, default=1)


class ConvNet(nn.Module):
    """ConvNet-W-D with configurable norm, activation and pooling (paper Tables T6-T10).

    `depth` None (the default) resolves from the input size with `default_depth` (3 for the
    reference's image sizes). The first convolution pads 28x28 inputs to 32x32 maps
    (`first_layer_padding`), so 28x28 and 32x32 inputs both give width x 4 x 4 features at depth 3.
    """
    num_classes: int
    width: int = 128
    depth: int | None = None
    norm: str = "instance"
    activation: str = "relu"
    pooling: str = "avg"
    conv_impl: str = "matmul_grad"

    def depth_for(self, image_shape: tuple[int, ...]) -> int:
        """The depth this network has on images of `image_shape` (H, W, C)."""
        return self.depth if self.depth is not None else default_depth(image_shape, self.pooling)

    def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
        return self(x, train=train, features_only=True)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, features_only: bool = False) -> jax.Array:
        act = activation_fn(self.activation)
        padding = first_layer_padding(x.shape[-3:], 1)
        for d in range(self.depth_for(x.shape[-3:])):
            conv = Conv(self.width, 3, padding=padding if d == 0 else 1, impl=self.conv_impl,
                        bias_cancelled=self.norm == "instance")
            if self.norm == "instance" and conv.fuses_with_instance_norm(x):
                x = InstanceNorm()(x, conv=conv)   # the first block's thin convolution, fused on CPU
            else:
                x = norm_layer(self.norm, train)(conv(x))
            x = act(x)
            x = pool(x, self.pooling)
        x = x.reshape(x.shape[:-3] + (-1,))
        if features_only:
            return x
        return Dense(self.num_classes)(x)
