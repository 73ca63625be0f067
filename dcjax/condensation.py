"""Algorithm 1 of the paper: learn the synthetic set by class-wise gradient matching.

One outer iteration (`outer_step`, one jit-compiled program) draws a fresh network from its key,
then T times: matches the gradients of every class's synthetic images to those of a fresh real
batch and takes one SGD step on the images, and (except after the last step) trains the network
on the whole synthetic set for zeta_theta epochs. `run` drives the iterations with resumable
Orbax checkpoints and writes the finished set, its picture and a first evaluation to the workdir.

Deliberate differences from the reference code (all documented in docs/reference_differences.md):
K outer iterations perform K image updates (the reference's loop runs K+1); every random draw
derives from `config.seed` (the reference seeds from the wall clock).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcjax import compilation
from dcjax import data as data_lib
from dcjax.support import run_log
from dcjax.sharding import ClassLayout, class_layout, to_host
from dcjax.support.checkpoints import RunCheckpoints
from dcjax.synthetic_set import SyntheticSet, save_synthetic
from dcjax.configuration import resolved_loops, root_keys, validate
from dcjax.errors import ConfigError, DcjaxError
from dcjax.matching import matching_loss_and_grad
from dcjax.nets import get_model, uses_batch_norm
from dcjax.nets.convnet import ConvNet, last_norm_map_size
from dcjax.support.signals import RunInterrupted, StopRequests
from dcjax.training import train_epochs
from dcjax.support.lock import WorkdirLock

PyTree = Any


@flax.struct.dataclass
class CondenseState:
    """Everything that changes from one outer iteration to the next."""
    images: jax.Array      # (C, ipc, H, W, ch), normalised pixel space
    opt_state: PyTree      # SGD-momentum state of the images
    key: jax.Array         # base key of the iterations; iteration k uses fold_in(key, k)
    iteration: jax.Array   # int32 scalar: outer iterations done


def model_from_config(config: Any, num_classes: int, image_shape: tuple[int, ...]) -> nn.Module:
    """The network the config condenses with."""
    overrides = {k: v for k, v in config.net.items() if v is not None}
    return get_model(config.model, num_classes, image_shape, **overrides)


def image_optimizer(config: Any) -> optax.GradientTransformation:
    """SGD with momentum on the synthetic images (paper: lr 0.1, momentum 0.5)."""
    return optax.sgd(config.lr_img, momentum=config.momentum_img)


def initial_images(config: Any, dataset: data_lib.Dataset, key: jax.Array) -> jax.Array:
    """Synthetic images (C, ipc, H, W, ch): standard normal noise, or random real images of each class."""
    shape = (dataset.num_classes, config.ipc) + tuple(dataset.image_shape)
    if config.init == "real":
        return data_lib.sample_real(key, dataset, config.ipc)
    return jax.random.normal(key, shape, jnp.float32)


def init_state(config: Any, dataset: data_lib.Dataset) -> CondenseState:
    keys = root_keys(config.seed)
    images = initial_images(config, dataset, keys["init"])
    return CondenseState(images=images, opt_state=image_optimizer(config).init(images),
                         key=keys["iterations"], iteration=jnp.zeros((), jnp.int32))


def class_major_labels(num_classes: int, ipc: int) -> jax.Array:
    """[0]*ipc + [1]*ipc + ...: the label of each flattened synthetic image."""
    return jnp.repeat(jnp.arange(num_classes, dtype=jnp.int32), ipc)


OuterStep = Callable[[CondenseState, data_lib.Dataset], tuple[CondenseState, jax.Array]]


def make_outer_iteration(module: nn.Module, config: Any, layout: ClassLayout | None = None) -> OuterStep:
    """The jit-compiled outer iteration: (state, dataset) -> (next state, mean matching loss)."""
    return compilation.jit(outer_iteration_function(module, config, layout))


def outer_iteration_function(module: nn.Module, config: Any, layout: ClassLayout | None = None) -> OuterStep:
    """The outer iteration as a pure function of (state, dataset), before `jax.jit`.

    With a `layout` (several devices), the state's images are padded and sharded by class
    (`place_state`), every device matches its own classes, and the network update sees the
    unpadded images gathered on every device.
    """
    outer_loop, inner_loop = resolved_loops(config)
    image_tx = image_optimizer(config)
    net_tx = optax.sgd(config.lr_net)
    batch_norm = uses_batch_norm(module)

    def match_and_update(images, opt_state, variables, key, dataset):
        key_real, key_bn = jax.random.split(key)
        frozen = {}
        if batch_norm:
            # Reference: one training-mode pass of 16 real images per class sets the running
            # statistics, which stay frozen while the gradients are matched.
            bn_images = data_lib.sample_real(key_bn, dataset, config.bn_batch_per_class)
            _, updated = module.apply(variables, bn_images.reshape((-1,) + bn_images.shape[2:]),
                                      train=True, mutable=["batch_stats"])
            variables = {**variables, **updated}
            frozen = {"batch_stats": variables["batch_stats"]}
        real = data_lib.sample_real(key_real, dataset, config.batch_real)
        match = layout.matching_loss_and_grad if layout is not None else matching_loss_and_grad
        losses, grads = match(
            module.apply, variables["params"], frozen, images, real, config.metric,
            config.class_parallel, config.get("class_chunk"))
        updates, opt_state = image_tx.update(grads, opt_state, images)
        return optax.apply_updates(images, updates), opt_state, variables, jnp.sum(losses)

    def train_network(variables, images, key):
        if layout is not None:
            images = jax.lax.with_sharding_constraint(layout.unpad(images), layout.replicated())
        num_classes, ipc = images.shape[:2]
        x = jax.lax.stop_gradient(images).reshape((-1,) + images.shape[2:])
        y = class_major_labels(num_classes, ipc)
        variables, _ = train_epochs(module.apply, net_tx, variables, net_tx.init(variables["params"]),
                                    x, y, key, inner_loop, config.batch_train)
        return variables

    def outer_step(state: CondenseState, dataset: data_lib.Dataset):
        key = jax.random.fold_in(state.key, state.iteration)
        init_key, loop_key = jax.random.split(key)
        variables = module.init(init_key, state.images[0], train=False)

        def matching_then_training(carry, t):
            images, opt_state, variables = carry
            match_key, train_key = jax.random.split(jax.random.fold_in(loop_key, t))
            images, opt_state, variables, loss = match_and_update(images, opt_state, variables, match_key, dataset)
            variables = train_network(variables, images, train_key)
            return (images, opt_state, variables), loss

        (images, opt_state, variables), losses = jax.lax.scan(
            matching_then_training, (state.images, state.opt_state, variables), jnp.arange(outer_loop - 1))
        last_key = jax.random.split(jax.random.fold_in(loop_key, outer_loop - 1))[0]
        images, opt_state, _, last_loss = match_and_update(images, opt_state, variables, last_key, dataset)
        num_classes = layout.num_classes if layout is not None else images.shape[0]
        mean_loss = (jnp.sum(losses) + last_loss) / (outer_loop * num_classes)
        if layout is not None:
            images, opt_state = jax.tree_util.tree_map(
                lambda x: jax.lax.with_sharding_constraint(x, layout.by_class()), (images, opt_state))
        return CondenseState(images, opt_state, state.key, state.iteration + 1), mean_loss

    return outer_step


# ----------------------------------------------------------------------------------------------
# Driving a run: data, resumable checkpoints, outputs in the workdir.

# Fields that may change between a run and its resumption without changing the result (beyond
# float rounding, for the device mesh).
RESUMABLE_FIELDS = ("num_iterations", "checkpoint_every", "log_every", "eval_every", "eval",
                    "data_dir", "class_parallel", "class_chunk", "mesh")


def warn_if_degenerate(module: nn.Module, image_shape: tuple[int, ...], warn: Callable[[str], None]) -> None:
    """Warn when a ConvNet's last block normalises a map of 2x2 or less (gradients become near-orthogonal)."""
    if isinstance(module, ConvNet) and module.norm in ("instance", "group", "layer"):
        size = last_norm_map_size(tuple(image_shape), module.depth, module.pooling)
        if size <= 2:
            warn(f"warning: ConvNet depth {module.depth} normalises {size}x{size} feature maps in its last block "
                 f"for {image_shape[0]}x{image_shape[1]} inputs; gradient matching barely learns there. "
                 f"Use a smaller --config.net.depth.")


def place_state(state: CondenseState, layout: ClassLayout | None) -> CondenseState:
    """The state on the devices: images and their optimiser state padded and sharded by class."""
    if layout is None:
        return jax.tree_util.tree_map(jnp.asarray, state)
    images, opt_state = layout.put_by_class((state.images, state.opt_state))
    key, iteration = layout.put_replicated((state.key, state.iteration))
    return CondenseState(images, opt_state, key, iteration)


def _state_dict(state: CondenseState, layout: ClassLayout | None = None) -> dict[str, Any]:
    """The state as host arrays without class padding: checkpoints do not depend on the device count."""
    host = jax.tree_util.tree_map(to_host, state)
    if layout is not None:
        host = host.replace(images=layout.unpad(host.images),
                            opt_state=jax.tree_util.tree_map(layout.unpad, host.opt_state))
    return flax.serialization.to_state_dict(host)


def _host_images(state: CondenseState, layout: ClassLayout | None) -> np.ndarray:
    """The synthetic images alone as a host array without class padding."""
    images = to_host(state.images)
    return layout.unpad(images) if layout is not None else images


def _check_same_config(saved: dict[str, Any], current: dict[str, Any], workdir: str) -> None:
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in RESUMABLE_FIELDS and saved.get(k) != current.get(k))
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise ConfigError(f"the config differs from the run in {workdir} ({details}); "
                          f"use the original values or a new --workdir")


def run(config: Any, workdir: str) -> dict[str, Any]:
    """Condense as `config` says into `workdir`, resuming from its newest checkpoint if any.

    Writes `checkpoints/`, `synthetic/` (the finished set), `images/` (PNG grids),
    `metrics.jsonl` and `summary.json` (final evaluation and wall times); returns the summary.
    """
    validate(config)
    dataset = data_lib.load(config.dataset, config.get("data_dir"), config.data_source)
    data_lib.check_batch_size(dataset, config.batch_real, field="batch_real")
    module = model_from_config(config, dataset.num_classes, dataset.image_shape)
    if uses_batch_norm(module):
        data_lib.check_batch_size(dataset, config.bn_batch_per_class, field="bn_batch_per_class")
    layout = class_layout(config, dataset.num_classes)
    if layout is not None and config.batch_real % layout.batch_shards:
        raise ConfigError(f"config.batch_real={config.batch_real} does not split over the mesh's {layout.batch_shards} "
                          f"batch shards; use a multiple of {layout.batch_shards} or set config.mesh.shape")
    # Every process computes; process 0 alone writes logs, pictures and summaries (and holds the
    # workdir's lock), while all processes take part in Orbax's checkpoint and set writes.
    primary = jax.process_index() == 0
    with WorkdirLock(workdir) if primary else contextlib.nullcontext():
        return _run_locked(config, workdir, dataset, module, layout)


def _run_locked(config: Any, workdir: str, dataset: data_lib.Dataset, module: nn.Module,
                layout: ClassLayout | None) -> dict[str, Any]:
    """The body of `run`, while this process holds the workdir's lock (or is not process 0)."""
    config_dict = config.to_dict()
    log = run_log.RunLog(workdir, config, dataset, mesh=layout.mesh if layout is not None else None)
    warn_if_degenerate(module, dataset.image_shape, log.message)

    checkpoints = RunCheckpoints(workdir)
    state = init_state(config, dataset)
    latest = checkpoints.latest_step()
    if latest is not None:
        restored, meta = checkpoints.restore(latest, _state_dict(state, None))
        _check_same_config(meta["config"], config_dict, workdir)
        state = flax.serialization.from_state_dict(state, restored)
        log.message(f"resuming from iteration {int(state.iteration)} in {workdir}")
    state = place_state(state, layout)
    if layout is not None:
        dataset = layout.put_replicated(dataset)
        log.message(f"{layout.mesh.devices.size} devices: mesh {dict(layout.mesh.shape)}"
                    + (f", {layout.padded_classes - layout.num_classes} padding class(es)"
                       if layout.padded_classes > layout.num_classes else ""))

    outer_step = make_outer_iteration(module, config, layout)
    num_iterations = int(config.num_iterations)
    progress = log.progress(start=int(state.iteration), total=num_iterations)

    def close_outputs() -> None:
        progress.close()
        checkpoints.wait()
        checkpoints.close()

    with StopRequests() as stop:
        while int(state.iteration) < num_iterations:
            state, loss = outer_step(state, dataset)
            iteration = int(state.iteration)
            loss = float(loss)
            log.iteration(iteration, loss, progress)
            if not (math.isfinite(loss) and bool(jnp.isfinite(state.images).all())):
                # Neither this state nor its images are saved: the newest checkpoint stays the last good one.
                checkpoints.wait()
                last_good = checkpoints.latest_step()
                close_outputs()
                what = f"matching loss became {loss}" if not math.isfinite(loss) else "synthetic images became non-finite"
                kept = (f"the last good checkpoint (iteration {last_good}) is kept in {checkpoints.directory}"
                        if last_good is not None else "no checkpoint had been saved yet")
                raise DcjaxError(f"{what} at iteration {iteration}; {kept}; lower config.lr_img and resume")
            if iteration % config.checkpoint_every == 0 or iteration == num_iterations or stop.signum:
                checkpoints.save(iteration, _state_dict(state, layout), {"config": config_dict})
            if stop.signum:
                close_outputs()
                raise RunInterrupted(stop.signum, iteration, checkpoints.directory)
            if config.eval_every and iteration % config.eval_every == 0 and iteration < num_iterations:
                log.evaluation_point(iteration, _host_images(state, layout), module)
    close_outputs()

    images = _host_images(state, layout)
    synset = SyntheticSet(images.reshape((-1,) + images.shape[2:]),
                          jax.device_get(class_major_labels(*images.shape[:2])),
                          run_log.set_metadata(config, dataset, module, int(state.iteration)))
    save_synthetic(f"{workdir}/synthetic", synset)
    return log.finish(synset, module)
