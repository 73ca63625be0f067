"""Algorithm 1 of the paper: learn the synthetic set by class-wise gradient matching.

    for k in 1..K:                                    one outer iteration (`outer_iteration`)
        draw a fresh network theta_0
        for t in 0..T-1:                              T matching steps (config.outer_loop)
            for every class c (all at once):
                D(grad of the loss on S_c, grad of the loss on a real batch of class c)
            S <- SGD-momentum step on D's gradient w.r.t. the images
            if t < T-1: train theta on S for zeta_theta epochs (config.inner_loop)

`make_outer_iteration` compiles one outer iteration into one program (the T steps inside a
`lax.scan`) that takes the state and returns the next one, donating the state it replaces.
`condense` is the loop around it, in plain view: resume from the newest checkpoint, iterate,
record, checkpoint, stop cleanly on a signal, and write the finished set. Evaluating the set is a
second call (`dcjax.run_evaluation.evaluate_run`; the command line does both).

Deliberate differences from the reference code (docs/reference_differences.md): K outer
iterations perform K image updates (the reference's loop runs K+1); every random draw derives
from `config.seed` (the reference seeds from the wall clock).
"""
from __future__ import annotations

import contextlib
import functools
import math
import time
from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcjax import compilation, distribution_matching, dsa
from dcjax import data as data_lib
from dcjax.configuration import resolved_loops, root_keys, run_setting
from dcjax.errors import ConfigError, DataError, DcjaxError
from dcjax.evaluate import EvalRecipe
from dcjax.nets import describe_module, uses_batch_norm
from dcjax.nets.convnet import ConvNet, last_norm_map_size
from dcjax.sharding import ClassLayout, to_host
from dcjax.support.checkpoints import RunCheckpoints
from dcjax.support.lock import WorkdirLock
from dcjax.run_evaluation import evaluation_point
from dcjax.support.run_log import RunLog
from dcjax.support.signals import RunAborted, RunInterrupted, StopRequests, wait_until_ready
from dcjax.synthetic_set import SyntheticSet, save_synthetic, set_metadata
from dcjax.training import train_epochs

PyTree = Any


@flax.struct.dataclass
class CondenseState:
    """Everything that changes from one outer iteration to the next."""
    images: jax.Array      # (C, ipc, H, W, ch), normalised pixel space
    opt_state: PyTree      # SGD-momentum state of the images
    key: jax.Array         # base key of the iterations; iteration k uses fold_in(key, k)
    iteration: jax.Array   # int32 scalar: outer iterations done


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


def iteration_keys(base_key: jax.Array, iteration: jax.Array | int) -> tuple[jax.Array, jax.Array]:
    """(key of the iteration's fresh network, key of its matching steps) for outer iteration
    `iteration` (0-based): every iteration's randomness is a pure function of the seed and its number."""
    return tuple(jax.random.split(jax.random.fold_in(base_key, iteration)))


OuterIteration = Callable[[CondenseState, data_lib.Dataset], tuple[CondenseState, jax.Array]]
# fold_in tag of DSA's matching-step keys: the real batch and batch-norm keys stay those of DC.
_DSA_STREAM = 0x647361


def make_outer_iteration(module: nn.Module, config: Any, layout: ClassLayout) -> OuterIteration:
    """One outer iteration, jit-compiled: (state, dataset) -> (next state, mean matching loss).

    The state passed in is donated (its buffers are reused for the next one): do not use it again.
    """
    return compilation.jit(outer_iteration_function(module, config, layout), donate_argnums=0)


def outer_iteration_function(module: nn.Module, config: Any, layout: ClassLayout) -> OuterIteration:
    """One outer iteration as a pure function of (state, dataset), before `jax.jit`.

    The state's images are padded and sharded by class over `layout`'s mesh (`place_state`; on one
    device the layout is trivial): every device matches its own classes, and the network update
    sees the unpadded images gathered on every device.
    """
    if config.get("method", "dc") == "dm":   # distribution matching: its own loss and iteration, same state
        return distribution_matching.outer_iteration_function(module, config, layout, image_optimizer(config),
                                                              CondenseState, iteration_keys)
    matching_steps, network_epochs = resolved_loops(config)   # T and zeta_theta
    image_tx = image_optimizer(config)
    net_tx = optax.sgd(config.lr_net)
    batch_norm = uses_batch_norm(module)
    dsa_strategy = config.dsa_strategy if config.get("method", "dc") == "dsa" else "none"

    def batch_norm_statistics(variables, key, dataset):
        """The reference's one training-mode pass of real images (bn_batch_per_class per class) that
        sets the running statistics; matching then uses them frozen."""
        if not batch_norm:
            return variables, {}
        real = data_lib.sample_real(key, dataset, config.bn_batch_per_class)
        _, updated = module.apply(variables, real.reshape((-1,) + real.shape[2:]), train=True,
                                  mutable=["batch_stats"])
        variables = {**variables, **updated}
        return variables, {"batch_stats": variables["batch_stats"]}

    def siamese_augmentation(key, images):
        """DSA: class c's real and synthetic batches both go through one draw of `key` folded with c
        (identity for DC); returns the augmented images and the map back to the images' gradient."""
        def augment_all(batches):
            return jax.vmap(lambda c, x: dsa.augment(jax.random.fold_in(key, c), x, dsa_strategy, siamese=True))(
                jnp.arange(batches.shape[0]), batches)
        return augment_all, jax.vjp(augment_all, images)

    def matching_step(images, opt_state, variables, key, dataset):
        """Match every class's gradients once and take one image-optimiser step."""
        key_real, key_bn = jax.random.split(key)
        variables, frozen = batch_norm_statistics(variables, key_bn, dataset)
        real = data_lib.sample_real(key_real, dataset, config.batch_real)
        matched = images
        if dsa_strategy != "none":
            augment_all, (matched, back) = siamese_augmentation(jax.random.fold_in(key, _DSA_STREAM), images)
            real = augment_all(real)
        losses, grads = layout.matching_loss_and_grad(
            module.apply, variables["params"], frozen, matched, real, config.metric,
            config.class_parallel, config.get("class_chunk"))
        if dsa_strategy != "none":
            (grads,) = back(grads)   # through the augmentation to the synthetic images themselves
        updates, opt_state = image_tx.update(grads, opt_state, images)
        return optax.apply_updates(images, updates), opt_state, variables, jnp.sum(losses)

    def train_network(variables, images, key):
        """zeta_theta epochs of SGD on the whole synthetic set (treated as data, not differentiated)."""
        images = jax.lax.with_sharding_constraint(layout.unpad(images), layout.replicated())
        num_classes, ipc = images.shape[:2]
        x = jax.lax.stop_gradient(images).reshape((-1,) + images.shape[2:])
        y = class_major_labels(num_classes, ipc)
        augment = None if dsa_strategy == "none" else functools.partial(dsa.augment, strategy=dsa_strategy)
        variables, _ = train_epochs(module.apply, net_tx, variables, net_tx.init(variables["params"]),
                                    x, y, key, network_epochs, config.batch_train, augment)
        return variables

    def outer_iteration(state: CondenseState, dataset: data_lib.Dataset):
        init_key, loop_key = iteration_keys(state.key, state.iteration)
        variables = module.init(init_key, state.images[0], train=False)   # a fresh network

        def match_then_train(carry, t):
            images, opt_state, variables = carry
            match_key, train_key = jax.random.split(jax.random.fold_in(loop_key, t))
            images, opt_state, variables, loss = matching_step(images, opt_state, variables, match_key, dataset)
            variables = train_network(variables, images, train_key)
            return (images, opt_state, variables), loss

        # Steps 0..T-2 each train the network afterwards; the last step does not.
        carry, losses = (state.images, state.opt_state, variables), jnp.zeros((0,))
        if matching_steps > 1:   # no loop to trace and compile at T = 1 (ipc 1)
            carry, losses = jax.lax.scan(match_then_train, carry, jnp.arange(matching_steps - 1))
        images, opt_state, variables = carry
        last_key = jax.random.split(jax.random.fold_in(loop_key, matching_steps - 1))[0]
        images, opt_state, _, last_loss = matching_step(images, opt_state, variables, last_key, dataset)
        mean_loss = (jnp.sum(losses) + last_loss) / (matching_steps * layout.num_classes)
        images, opt_state = jax.tree_util.tree_map(
            lambda x: jax.lax.with_sharding_constraint(x, layout.by_class()), (images, opt_state))
        return CondenseState(images, opt_state, state.key, state.iteration + 1), mean_loss

    return outer_iteration


# ----------------------------------------------------------------------------------------------
# The run: data, resumable checkpoints, the loop, the finished set.

# Fields that may change between a run and its resumption without changing the result (beyond
# float rounding, for the device mesh).
RESUMABLE_FIELDS = ("num_iterations", "checkpoint_every", "log_every", "eval_every", "eval",
                    "data_dir", "class_parallel", "class_chunk", "mesh")


def condense(config: Any, workdir: str, dataset: data_lib.Dataset | None = None) -> SyntheticSet:
    """Learn the synthetic set `config` asks for in `workdir`, resuming from its newest checkpoint.
    `dataset` replaces the config's data when given (the applications condense datasets they
    prepared: a continual-learning task resized, a class subset).

    Writes `checkpoints/`, `synthetic/` (the finished set), `images/` (PNG grids), `metrics.jsonl`
    and `summary.json` (condensation figures); returns the set. With `config.eval_every`, sets along
    the way are evaluated as `config.eval` says. Every process of a multi-process run calls this;
    process 0 alone holds the workdir's lock and writes logs and pictures, all take part in Orbax's
    checkpoint and set writes.
    """
    dataset, module, layout = run_setting(config, dataset)
    check_fits(config, dataset, module, layout)
    with WorkdirLock(workdir) if jax.process_index() == 0 else contextlib.nullcontext():
        return _condense_locked(config, workdir, dataset, module, layout)


def check_fits(config: Any, dataset: data_lib.Dataset, module: nn.Module, layout: ClassLayout) -> None:
    """ConfigError/DataError unless the config's sample sizes fit the dataset and the device mesh."""
    data_lib.check_batch_size(dataset, config.batch_real, field="batch_real")
    if uses_batch_norm(module):
        data_lib.check_batch_size(dataset, config.bn_batch_per_class, field="bn_batch_per_class")
    if config.init == "real":
        smallest = int(np.min(np.asarray(dataset.class_counts)))
        if config.ipc > smallest:
            raise DataError(f"config.init='real' starts from {config.ipc} distinct real images per class, but "
                            f"the smallest {dataset.name} class has {smallest}; set config.ipc <= {smallest} "
                            f"or config.init='noise'")
    if config.batch_real % layout.batch_shards:
        raise ConfigError(f"config.batch_real={config.batch_real} does not split over the mesh's {layout.batch_shards} "
                          f"batch shards; use a multiple of {layout.batch_shards} or set config.mesh.shape")


def _condense_locked(config: Any, workdir: str, dataset: data_lib.Dataset, module: nn.Module,
                     layout: ClassLayout) -> SyntheticSet:
    """The body of `condense`, while this process holds the workdir's lock (or is not process 0)."""
    log = RunLog(workdir, dataset.class_names, dataset.mean, dataset.std, config.log_every)
    warn_if_degenerate(module, dataset.image_shape, log.message)
    if layout.mesh.devices.size > 1:
        log.message(f"{layout.mesh.devices.size} devices: mesh {dict(layout.mesh.shape)}"
                    + (f", {layout.padded_classes - layout.num_classes} padding class(es)"
                       if layout.padded_classes > layout.num_classes else ""))
    checkpoints = RunCheckpoints(workdir)
    state = place_state(restore_or_initialise(config, dataset, checkpoints, workdir, log), layout)
    dataset = layout.put_replicated(dataset)
    outer_iteration = make_outer_iteration(module, config, layout)
    num_iterations = int(config.num_iterations)
    start = time.time()
    log.start_iterations(int(state.iteration), num_iterations)
    # A first stop signal ends the run after the iteration in flight, with a checkpoint of it; a
    # second one, even while that checkpoint is being written, ends it at once (RunAborted).
    with StopRequests() as stop:
        aborted = False
        try:
            while int(state.iteration) < num_iterations:
                state, loss = outer_iteration(state, dataset)
                loss = float(wait_until_ready(loss))
                iteration = int(state.iteration)
                log.iteration(iteration, loss)
                check_finite(loss, state, iteration, checkpoints)
                signum = stop.agreed()
                if iteration % config.checkpoint_every == 0 or iteration == num_iterations or signum:
                    checkpoints.save(iteration, _state_dict(state, layout), {"config": config.to_dict()})
                if signum:
                    raise RunInterrupted(signum, iteration, checkpoints.directory)
                if config.eval_every and iteration % config.eval_every == 0 and iteration < num_iterations:
                    evaluation_point(config, dataset, module, layout.mesh, log, iteration, _host_images(state, layout))
        except RunAborted:
            aborted = True   # end now: a checkpoint write in flight is atomic, the newest finished one stays
            raise
        finally:
            log.end_iterations()
            if not aborted:
                checkpoints.wait()
                checkpoints.close()

    images = _host_images(state, layout)
    synset = SyntheticSet(images.reshape((-1,) + images.shape[2:]),
                          np.asarray(class_major_labels(*images.shape[:2])),
                          condensed_set_metadata(config, dataset, module, int(state.iteration)))
    save_synthetic(f"{workdir}/synthetic", synset)
    log.grid("final", images)
    log.summary({"dataset": dataset.name, "ipc": int(config.ipc), "model": config.model,
                 "iterations": int(state.iteration), "condense_seconds": round(time.time() - start, 2),
                 "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                 "processes": jax.process_count(), "images_sha256": synset.sha256()})
    log.close()
    return synset


def condensed_set_metadata(config: Any, dataset: data_lib.Dataset, module: nn.Module,
                           iteration: int) -> dict[str, Any]:
    """A condensed set's metadata: the data description every set has, plus how it was made and the
    evaluation recipe its config asks for (the default of `bin/evaluate.py`)."""
    return set_metadata(dataset, config.ipc, model=config.model, model_fields=describe_module(module),
                        iteration=iteration, eval_recipe=dict(EvalRecipe.from_config(config).__dict__),
                        config=config.to_dict())


def check_finite(loss: float, state: CondenseState, iteration: int, checkpoints: RunCheckpoints) -> None:
    """DcjaxError, saving nothing, when the loss or the images stop being finite; the newest
    checkpoint stays the last good one."""
    if math.isfinite(loss) and bool(jnp.isfinite(state.images).all()):
        return
    checkpoints.wait()
    last_good = checkpoints.latest_step()
    what = f"matching loss became {loss}" if not math.isfinite(loss) else "synthetic images became non-finite"
    kept = (f"the last good checkpoint (iteration {last_good}) is kept in {checkpoints.directory}"
            if last_good is not None else "no checkpoint had been saved yet")
    raise DcjaxError(f"{what} at iteration {iteration}; {kept}; lower config.lr_img and resume")


def restore_or_initialise(config: Any, dataset: data_lib.Dataset, checkpoints: RunCheckpoints, workdir: str,
                          log: RunLog) -> CondenseState:
    """The state of the newest checkpoint in `workdir` (refused if the config changed), else a new one."""
    state = init_state(config, dataset)
    latest = checkpoints.latest_step()
    if latest is None:
        return state
    restored, meta = checkpoints.restore(latest, _state_dict(state))
    _check_same_config(meta["config"], config.to_dict(), workdir)
    state = flax.serialization.from_state_dict(state, restored)
    log.message(f"resuming from iteration {int(state.iteration)} in {workdir}")
    return state


def warn_if_degenerate(module: nn.Module, image_shape: tuple[int, ...], warn: Callable[[str], None]) -> None:
    """Warn when a ConvNet's last block normalises a map of 2x2 or less (gradients become near-orthogonal)."""
    if isinstance(module, ConvNet) and module.norm in ("instance", "group", "layer"):
        depth = module.depth_for(tuple(image_shape))
        size = last_norm_map_size(tuple(image_shape), depth, module.pooling)
        if size <= 2:
            warn(f"warning: ConvNet depth {depth} normalises {size}x{size} feature maps in its last block "
                 f"for {image_shape[0]}x{image_shape[1]} inputs; gradient matching barely learns there. "
                 f"Use a smaller --config.net.depth.")


def place_state(state: CondenseState, layout: ClassLayout) -> CondenseState:
    """The state on the devices: images and their optimiser state padded and sharded by class."""
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


def _host_images(state: CondenseState, layout: ClassLayout) -> np.ndarray:
    """The synthetic images alone as a host array without class padding."""
    return layout.unpad(to_host(state.images))


# Config fields added after runs may have been checkpointed, with the value that means "as before".
_ADDED_FIELDS = {"holdout": 0, "method": "dc", "dsa_strategy": "color_crop_cutout_flip_scale_rotate"}


def _check_same_config(saved: dict[str, Any], current: dict[str, Any], workdir: str) -> None:
    saved = {**_ADDED_FIELDS, **saved}
    changed = sorted(k for k in set(saved) | set(current)
                     if k not in RESUMABLE_FIELDS and saved.get(k) != current.get(k))
    if changed:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise ConfigError(f"the config differs from the run in {workdir} ({details}); "
                          f"use the original values or a new --workdir")
