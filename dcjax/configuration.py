"""Derived settings and up-front validation of a condensation config.

`(T, zeta_theta)` — the number of matching steps per outer iteration ("outer_loop") and the inner
network-update epochs between them ("inner_loop") — come from the paper's table by ipc unless the
config sets them. The reference exits for any ipc outside {1, 10, 20, 30, 40, 50}; dcjax follows
the paper's appendix instead: T = min(ipc, 50) and zeta_theta = max(1, 500 // T).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from dcjax import dsa
from dcjax.augment import OPS as AUGMENT_OPS
from dcjax.errors import ConfigError
from dcjax.matching import METRICS, resolve_class_parallel
from dcjax.nets import get_model

METHODS = ("dc", "dsa", "dm")
LOOPS_BY_IPC: dict[int, tuple[int, int]] = {
    1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
INITS = ("noise", "real")


def loops_for_ipc(ipc: int) -> tuple[int, int]:
    """(outer_loop T, inner_loop zeta_theta) for `ipc` >= 1 images per class."""
    if ipc in LOOPS_BY_IPC:
        return LOOPS_BY_IPC[ipc]
    outer = min(ipc, 50)
    return outer, max(1, 500 // outer)


def resolved_loops(config: Any) -> tuple[int, int]:
    """The config's (outer_loop, inner_loop), filling unset ones from `loops_for_ipc`."""
    outer, inner = loops_for_ipc(int(config.ipc))
    if config.get("outer_loop") is not None:
        outer = int(config.outer_loop)
    if config.get("inner_loop") is not None:
        inner = int(config.inner_loop)
    return outer, inner


def model_from_config(config: Any, num_classes: int, image_shape: tuple[int, ...]) -> nn.Module:
    """The network the config condenses with: `config.model` with every `config.net` field that is set."""
    overrides = {k: v for k, v in config.net.items() if v is not None}
    return get_model(config.model, num_classes, tuple(image_shape), **overrides)


def run_setting(config: Any, dataset: Any = None) -> tuple[Any, nn.Module, Any]:
    """(dataset, condensing network, device layout) of a validated condensation config: what both
    stages of a run, condensing and evaluating, start from. `dataset`, if given, is used instead of
    loading the config's (e.g. a task of continual learning, resized)."""
    from dcjax import data as data_lib
    from dcjax.sharding import class_layout
    validate(config)
    if dataset is None:
        dataset = data_lib.load(config.dataset, config.get("data_dir"), config.data_source)
    if config.get("holdout"):
        dataset, _ = data_lib.hold_out(dataset, int(config.holdout), root_keys(config.seed)["holdout"])
    return (dataset, model_from_config(config, dataset.num_classes, dataset.image_shape),
            class_layout(config, dataset.num_classes))


def net_overrides(config: Any, model: str) -> dict[str, Any]:
    """The config's `net` fields (width, depth, ...) that are set and that the family of `model`
    has: a ConvNet config's depth means nothing to an MLP."""
    accepted = set(type(get_model(model, 10)).__dataclass_fields__)
    return {k: v for k, v in (config.get("net") or {}).items() if v is not None and k in accepted}


def root_keys(seed: int) -> dict[str, jax.Array]:
    """Independent keys for initialisation, iterations, evaluation and the held-out validation
    split (`config.holdout`), all from the seed."""
    root = jax.random.PRNGKey(seed)
    return {name: jax.random.fold_in(root, i) for i, name in enumerate(("init", "iterations", "eval", "holdout"))}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def validate(config: Any) -> None:
    """Raise ConfigError naming the first field with an unusable value."""
    _require(isinstance(config.ipc, int) and config.ipc >= 1,
             f"config.ipc must be an integer >= 1, got {config.ipc!r}")
    _require(isinstance(config.get("holdout", 0), int) and config.get("holdout", 0) >= 0,
             f"config.holdout must be an integer >= 0, got {config.get('holdout')!r}")
    _require(config.num_iterations >= 0,
             f"config.num_iterations must be >= 0, got {config.num_iterations}")
    for field in ("lr_img", "lr_net"):
        _require(config[field] > 0, f"config.{field} must be > 0, got {config[field]}")
    for field in ("batch_real", "batch_train", "checkpoint_every"):
        _require(config[field] >= 1, f"config.{field} must be >= 1, got {config[field]}")
    _require(0 <= config.momentum_img < 1, f"config.momentum_img must be in [0, 1), got {config.momentum_img}")
    _require(config.metric in METRICS, f"config.metric must be one of {METRICS}, got {config.metric!r}")
    _require(config.init in INITS, f"config.init must be one of {INITS}, got {config.init!r}")
    _require(config.get("method", "dc") in METHODS,
             f"config.method must be one of {METHODS}, got {config.get('method')!r}")
    if config.get("method", "dc") in ("dsa", "dm"):
        dsa.parse_strategy(config.dsa_strategy)
    outer, inner = resolved_loops(config)
    _require(outer >= 1 and inner >= 0,
             f"config.outer_loop must be >= 1 and config.inner_loop >= 0, got {outer}, {inner}")
    resolve_class_parallel(config.class_parallel)
    _require(config.get("class_chunk") is None or config.class_chunk >= 1,
             f"config.class_chunk must be unset or >= 1, got {config.get('class_chunk')}")
    _require(config.eval.num_models >= 0, f"config.eval.num_models must be >= 0, got {config.eval.num_models}")
    _require(config.eval.epochs >= 0, f"config.eval.epochs must be >= 0, got {config.eval.epochs}")
    _require(config.eval.parallel in ("auto", "vmap", "map"),
             f"config.eval.parallel must be 'auto', 'vmap' or 'map', got {config.eval.parallel!r}")
    augmentation = config.eval.get("augmentation", "none")
    _require(augmentation in ("auto", "none", "dsa")
             or (isinstance(augmentation, str) and set(augmentation.split("_")) <= set(AUGMENT_OPS)),
             f"config.eval.augmentation must be 'auto', 'none', 'dsa' or ops from {AUGMENT_OPS} joined by '_' "
             f"(e.g. 'crop_scale_rotate'), got {augmentation!r}")
    if augmentation == "dsa":
        dsa.parse_strategy(config.get("dsa_strategy", dsa.DEFAULT_STRATEGY))
