"""Network registry: `get_model("ConvNet", num_classes=10, width=64, norm="batch")`.

Names follow the reference code (utils.py get_network): `ConvNetD4`, `ConvNetW32`, `ConvNetBN`,
`ConvNetAS`, `ConvNetMP`, ..., `MLP`, `LeNet`, `AlexNet(BN)`, `VGG11(BN)`, `ResNet18(BN)`,
`ResNet18BN_AP`, plus `ResNet18_AP` (defined in networks.py, not reachable through get_network). A
name is shorthand for a family and overrides of its fields; explicit keyword overrides win over it.
"""
from __future__ import annotations

import numbers
import re
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from dcjax.errors import ConfigError
from dcjax.nets.alexnet import ALEXNET_NORMS, AlexNet
from dcjax.nets.convnet import ConvNet
from dcjax.nets.convolution import CONV_IMPLS
from dcjax.nets.layers import ACTIVATIONS, NORMS, POOLINGS, InputTooSmall
from dcjax.nets.lenet import LENET_NORMS, LeNet
from dcjax.nets.mlp import MLP
from dcjax.nets.resnet import RESNET_NORMS, ResNet18
from dcjax.nets.vgg import VGG_NORMS, VGG11

FAMILIES: dict[str, type[nn.Module]] = {"ConvNet": ConvNet, "MLP": MLP, "LeNet": LeNet, "AlexNet": AlexNet,
                                        "VGG11": VGG11, "ResNet18": ResNet18}

# Reference names outside the ConvNet family -> (family, field overrides).
_NAMED_MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "MLP": ("MLP", {}), "LeNet": ("LeNet", {}),
    "AlexNet": ("AlexNet", {}), "AlexNetBN": ("AlexNet", {"norm": "batch"}),
    "VGG11": ("VGG11", {}), "VGG11BN": ("VGG11", {"norm": "batch"}),
    "ResNet18": ("ResNet18", {}), "ResNet18BN": ("ResNet18", {"norm": "batch"}),
    "ResNet18_AP": ("ResNet18", {"avg_pool_downsample": True}),
    "ResNet18BN_AP": ("ResNet18", {"norm": "batch", "avg_pool_downsample": True}),
}

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
# Families whose norm choices are narrower than the ConvNet's (the reference builds only these).
_FAMILY_NORMS: dict[str, tuple[str, ...]] = {"LeNet": LENET_NORMS, "AlexNet": ALEXNET_NORMS,
                                             "VGG11": VGG_NORMS, "ResNet18": RESNET_NORMS}


def _parse_name(name: str) -> tuple[str, dict[str, Any]]:
    if name in _NAMED_MODELS:
        family, fields = _NAMED_MODELS[name]
        return family, dict(fields)
    if not name.startswith("ConvNet"):
        raise ConfigError(f"unknown model {name!r}; set config.model to one of: ConvNet, "
                          f"{', '.join(_NAMED_MODELS)} or a ConvNet variant such as ConvNetBN, ConvNetD4, "
                          f"ConvNetW64")
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


def _checked_input_shape(input_shape: Any) -> tuple[int, int, int]:
    """input_shape as (H, W, C) positive ints, or a ConfigError saying what is wrong with it."""
    try:
        dims = () if isinstance(input_shape, str) else tuple(input_shape)
    except TypeError:   # not iterable
        dims = ()
    if len(dims) != 3 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                                 for s in dims):
        raise ConfigError(f"input_shape must be three positive ints (height, width, channels), got "
                          f"{input_shape!r}; pass one image's shape without the batch axis, e.g. (32, 32, 3)")
    return tuple(int(s) for s in dims)


def _check_fits(module: nn.Module, name: str, shape: tuple[int, int, int]) -> None:
    """ConfigError unless `module` can take (H, W, C) images: traces its init on shapes only
    (jax.eval_shape, no computation), where every convolution and pooling checks its input map."""
    try:
        jax.eval_shape(lambda x: module.init(jax.random.key(0), x), jax.ShapeDtypeStruct((1,) + shape, jnp.float32))
    except InputTooSmall as e:
        raise ConfigError(f"model {name!r} cannot take {shape[0]}x{shape[1]}x{shape[2]} images (H, W, C): {e}; "
                          f"use larger images or a network with fewer poolings (e.g. a smaller ConvNet depth, "
                          f"or MLP)") from e


def get_model(name: str, num_classes: int, input_shape: Sequence[int] | None = None,
              **overrides: Any) -> nn.Module:
    """Build a Flax Linen module by name; `overrides` set family fields (width, depth, norm, ...).

    With `input_shape` (H, W, C of one image) the shape is validated, the network is checked to fit
    it (a ConfigError, not a failure inside Flax, when the image is too small for its poolings), and
    a ConvNet's unset depth is resolved for it (`dcjax.nets.convnet.default_depth`).
    """
    family, fields = _parse_name(name)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    module_cls = FAMILIES[family]
    known = set(module_cls.__dataclass_fields__) - {"parent", "name", "num_classes"}
    unknown = set(fields) - known
    if unknown:
        raise ConfigError(f"model {name!r} has no field(s) {sorted(unknown)}; it accepts {sorted(known)}")
    for field, allowed in {**_ALLOWED, "norm": _FAMILY_NORMS.get(family, NORMS)}.items():
        if field in fields and fields[field] not in allowed:
            raise ConfigError(f"model field {field}={fields[field]!r} is not one of {allowed}")
    if "depth" in fields and not 1 <= int(fields["depth"]) <= 4:
        raise ConfigError(f"ConvNet depth must be 1..4, got {fields['depth']}")
    module = module_cls(num_classes=num_classes, **fields)
    if input_shape is not None:
        shape = _checked_input_shape(input_shape)
        if isinstance(module, ConvNet):
            module = module.clone(depth=module.depth_for(shape))
        _check_fits(module, name, shape)
    return module


def uses_batch_norm(module: nn.Module) -> bool:
    """Whether the module keeps running statistics (a 'batch_stats' collection)."""
    return getattr(module, "norm", None) == "batch"


# Fields of the network the reference evaluates instead of a batch-norm one (see instance_norm_twin).
_TWIN_FIELDS: dict[type[nn.Module], dict[str, Any]] = {
    LeNet: {"norm": "none"}, AlexNet: {"norm": "none"},
    ResNet18: {"norm": "instance", "avg_pool_downsample": False},
}


def instance_norm_twin(module: nn.Module) -> nn.Module:
    """The network the reference evaluates a batch-norm network's synthetic set on (eval mode 'S').

    The reference strips everything from 'BN' on from the model name (`model[:model.index('BN')]`,
    utils.py:463-466) and evaluates that network; the twin is that network, which is not always
    the same architecture with instance norm:

    * ConvNet, VGG11, ResNet18: norm "instance" (ConvNetBN -> ConvNet, VGG11BN -> VGG11,
      ResNet18BN -> ResNet18).
    * AlexNet (and LeNet): norm "none", since the reference's AlexNet has no normalisation
      (AlexNetBN -> AlexNet).
    * ResNet18 with `avg_pool_downsample`: the plain strided ResNet18 with instance norm, as the
      reference does (ResNet18BN_AP -> ResNet18, not ResNet18_AP); `config.eval.model` picks
      ResNet18_AP explicitly.

    Networks without batch norm are returned unchanged.
    """
    if not uses_batch_norm(module):
        return module
    return module.clone(**_TWIN_FIELDS.get(type(module), {"norm": "instance"}))


def describe_module(module: nn.Module) -> dict[str, Any]:
    """The network's family and fields, JSON-ready: how sets, summaries and reports record a network."""
    fields = {k: getattr(module, k) for k in module.__dataclass_fields__ if k not in ("parent", "name")}
    return {"family": type(module).__name__, **fields}


__all__ = ["get_model", "describe_module", "uses_batch_norm", "instance_norm_twin", "ConvNet", "MLP", "LeNet", "AlexNet", "VGG11",
           "ResNet18", "FAMILIES"]
