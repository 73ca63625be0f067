"""The reference's MLP: flatten -> 128 -> 128 -> classes with ReLU."""
from __future__ import annotations

import flax.linen as nn
import jax

from dcjax.nets.layers import Dense


class MLP(nn.Module):
    num_classes: int
    width: int = 128

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = x.reshape(x.shape[:-3] + (-1,))
        x = nn.relu(Dense(self.width)(x))
        x = nn.relu(Dense(self.width)(x))
        return Dense(self.num_classes)(x)
