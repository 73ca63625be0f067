"""Network registry: `get_model("ConvNet", num_classes=10, width=64, norm="batch")`.

Names follow the reference code where it has them (`ConvNetD4`, `ConvNetW32`, `ConvNetBN`,
`ConvNetAS`, `ConvNetMP`, ...): a suffix is shorthand for an override of the family's fields, and
explicit keyword overrides win over the suffix.
"""
from __future__ import annotations

import re
from typing import Any

import flax.linen as nn

from dcjax.errors import ConfigError
from dcjax.nets.convnet import ConvNet
from dcjax.nets.layers import ACTIVATIONS, CONV_IMPLS, NORMS, POOLINGS
from dcjax.nets.mlp import MLP

FAMILIES: dict[str, type[nn.Module]] = {"ConvNet": ConvNet, "MLP": MLP}

_CONVNET_SUFFIXES: dict[str, dict[str, Any]] = {
    "": {},
    "BN": {"norm": "batch"}, "IN": {"norm": "instance"}, "NN": {"norm": "none"},
    "LN": {"norm": "layer"}, "GN": {"norm": "group"},
    "AS": {"activation": "sigmoid"}, "AR": {"activation": "relu"},
    "AL": {"activation": "leaky_relu"}, "ASwish": {"activation": "swish"},
    "ASwishBN": {"activation": "swish", "norm": "batch"},
    "NP": {"pooling": "none"}, "MP": {"pooling": "max"}, "AP": {"pooling": "avg"},
}
_ALLOWED = {"norm": NORMS, "activation": ACTIVATIONS, "pooling": POOLINGS, "conv_impl": CONV_IMPLS}


def _parse_name(name: str) -> tuple[str, dict[str, Any]]:
    if name == "MLP":
        return "MLP", {}
    if not name.startswith("ConvNet"):
        raise ConfigError(f"unknown model {name!r}; set config.model to one of: "
                          f"{', '.join(sorted(FAMILIES))} or a ConvNet variant such as ConvNetBN, ConvNetD4, ConvNetW64")
    suffix = name[len("ConvNet"):]
    match = re.fullmatch(r"D(\d)|W(\d+)", suffix)
    if match and match.group(1):
        return "ConvNet", {"depth": int(match.group(1))}
    if match and match.group(2):
        return "ConvNet", {"width": int(match.group(2))}
    if suffix in _CONVNET_SUFFIXES:
        return "ConvNet", dict(_CONVNET_SUFFIXES[suffix])
    raise ConfigError(f"unknown ConvNet variant {name!r}; known suffixes: D1-D4, W<width>, "
                      f"{', '.join(s for s in _CONVNET_SUFFIXES if s)}")


def get_model(name: str, num_classes: int, input_shape: tuple[int, ...] | None = None,
              **overrides: Any) -> nn.Module:
    """Build a Flax Linen module by name; `overrides` set family fields (width, depth, norm, ...)."""
    family, fields = _parse_name(name)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    module_cls = FAMILIES[family]
    known = set(module_cls.__dataclass_fields__) - {"parent", "name", "num_classes"}
    unknown = set(fields) - known
    if unknown:
        raise ConfigError(f"model {name!r} has no field(s) {sorted(unknown)}; it accepts {sorted(known)}")
    for field, allowed in _ALLOWED.items():
        if field in fields and fields[field] not in allowed:
            raise ConfigError(f"model field {field}={fields[field]!r} is not one of {allowed}")
    if "depth" in fields and not 1 <= int(fields["depth"]) <= 4:
        raise ConfigError(f"ConvNet depth must be 1..4, got {fields['depth']}")
    if input_shape is not None and len(input_shape) != 3:
        raise ConfigError(f"input_shape must be (height, width, channels), got {input_shape}")
    return module_cls(num_classes=num_classes, **fields)


def uses_batch_norm(module: nn.Module) -> bool:
    """Whether the module keeps running statistics (a 'batch_stats' collection)."""
    return getattr(module, "norm", None) == "batch"


def instance_norm_twin(module: nn.Module) -> nn.Module:
    """The module with batch norm replaced by instance norm (the reference's evaluation mode 'S')."""
    if uses_batch_norm(module):
        return module.clone(norm="instance")
    return module


__all__ = ["get_model", "uses_batch_norm", "instance_norm_twin", "ConvNet", "MLP", "FAMILIES"]
