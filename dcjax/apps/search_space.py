"""The architecture-search space of the paper (section 3.2, supplementary "Neural Architecture
Search"): ConvNets over a grid of width W, depth D, normalisation N, activation A and pooling P.

The grid is data: a `{field: values}` mapping whose product lists the candidates, in a fixed order
(fields as in `FIELDS`, values in the order given), so candidate i is the same architecture in
every run of the same space. The paper's grid (`PAPER_SPACE`) has 4 x 4 x 5 x 3 x 3 = 720 members.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Mapping, Sequence

import flax.linen as nn

from dcjax.errors import ConfigError
from dcjax.nets import get_model
from dcjax.nets.layers import ACTIVATIONS, NORMS, POOLINGS

FIELDS = ("width", "depth", "norm", "activation", "pooling")
PAPER_SPACE: dict[str, tuple[Any, ...]] = {
    "width": (32, 64, 128, 256),
    "depth": (1, 2, 3, 4),
    "norm": ("none", "batch", "layer", "instance", "group"),
    "activation": ("sigmoid", "relu", "leaky_relu"),
    "pooling": ("none", "max", "avg"),
}
_ALLOWED = {"norm": NORMS, "activation": ACTIVATIONS, "pooling": POOLINGS}


@dataclasses.dataclass(frozen=True, order=True)
class Architecture:
    """One ConvNet of the search space."""
    width: int
    depth: int
    norm: str
    activation: str
    pooling: str

    @property
    def name(self) -> str:
        """E.g. 'ConvNet-W128-D3-instance-relu-avg': a stable key in results files."""
        return f"ConvNet-W{self.width}-D{self.depth}-{self.norm}-{self.activation}-{self.pooling}"

    def module(self, num_classes: int, image_shape: Sequence[int]) -> nn.Module:
        return get_model("ConvNet", num_classes, tuple(image_shape), **dataclasses.asdict(self))


def check_space(space: Mapping[str, Sequence[Any]]) -> dict[str, tuple[Any, ...]]:
    """The space as {field: tuple of values}; ConfigError naming the field for a missing or unknown
    field, an empty or repeated value list, or a value the ConvNet does not have."""
    space = {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in dict(space).items()}
    unknown = sorted(set(space) - set(FIELDS))
    missing = [f for f in FIELDS if f not in space]
    if unknown or missing:
        raise ConfigError(f"the search space must set exactly the fields {list(FIELDS)}; "
                          f"unknown: {unknown}, missing: {missing}")
    for field, values in space.items():
        if not values or len(set(values)) != len(values):
            raise ConfigError(f"config.space.{field} must list distinct values, got {list(values)}")
        allowed = _ALLOWED.get(field)
        for value in values:
            if allowed is not None and value not in allowed:
                raise ConfigError(f"config.space.{field} value {value!r} is not one of {allowed}")
            if field == "width" and not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"config.space.width values must be integers >= 1, got {value!r}")
            if field == "depth" and value not in (1, 2, 3, 4):
                raise ConfigError(f"config.space.depth values must be 1..4, got {value!r}")
    return {f: space[f] for f in FIELDS}


def grid(space: Mapping[str, Sequence[Any]] = PAPER_SPACE) -> list[Architecture]:
    """Every architecture of the (checked) space, in the space's fixed order."""
    space = check_space(space)
    return [Architecture(*values) for values in itertools.product(*(space[f] for f in FIELDS))]
