"""Distribution Matching (Zhao & Bilen, WACV 2023; the reference's main_DM.py) on dcjax's engine.

    for k in 1..K:                                      one outer iteration
        draw a fresh network (its weights are never trained)
        for every class c:
            d_c = || mean embed(real batch of c) - mean embed(S_c) ||^2    (penultimate features)
        S <- SGD-momentum step on the gradient of sum_c d_c w.r.t. the images

With DSA (`config.dsa_strategy` not 'none') each class's real and synthetic batches first go
through one shared draw (Siamese, `dcjax.dsa`), as the reference does. A batch-norm network
embeds all classes' real images in one training-mode pass and all synthetic images in another (the
reference's 'BN' branch); other networks embed class by class (no statistics are shared). There is
no inner loop and no per-ipc schedule: any ipc works (the reference's main_DM.py still refuses ipc
outside its DC loop table).

The state, checkpoints, resume, sharding of the images by class, logging and evaluation are
condensation's (`dcjax.condensation`); this module is the loss and the outer iteration only.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from dcjax import data as data_lib
from dcjax import dsa
from dcjax.matching import over_classes
from dcjax.nets import uses_batch_norm

# fold_in tag of DM's augmentation keys (the real batch's key stays the iteration's own).
_DSA_STREAM = 0x646D


def mean_embedding_distance(real_features: jax.Array, syn_features: jax.Array) -> jax.Array:
    """Per class, the squared l2 distance between the mean real and the mean synthetic feature:
    (C, n, D) and (C, ipc, D) -> (C,)."""
    return jnp.sum((real_features.mean(axis=1) - syn_features.mean(axis=1)) ** 2, axis=-1)


def dm_loss(embed: Callable[[jax.Array], jax.Array], real: jax.Array, syn: jax.Array, batch_norm: bool,
            augment: Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]] | None = None,
            class_parallel: str = "vmap", class_chunk: int | None = None) -> jax.Array:
    """Sum over classes of `mean_embedding_distance` for real (C, n, H, W, ch) and synthetic
    (C, ipc, H, W, ch) images; the real features are constants. `augment(class, real_c, syn_c)`,
    when given, transforms each class's two batches first. With `batch_norm` all classes go
    through `embed` in one pass each (shared batch statistics), otherwise class by class. The
    classes run as `class_parallel` says (`matching.over_classes`): on CPU one after another,
    where a vmap would run all of DSA's ops for every class (its op is drawn per class)."""
    classes = jnp.arange(syn.shape[0])
    if augment is None:
        augment = lambda c, r, s: (r, s)   # noqa: E731
    if batch_norm:
        real, syn = over_classes(lambda a: augment(*a), (classes, real, syn), class_parallel, class_chunk)
        real_features = embed(real.reshape((-1,) + real.shape[2:])).reshape(real.shape[:2] + (-1,))
        syn_features = embed(syn.reshape((-1,) + syn.shape[2:])).reshape(syn.shape[:2] + (-1,))
        return jnp.sum(mean_embedding_distance(jax.lax.stop_gradient(real_features), syn_features))

    def one_class(args):
        real_c, syn_c = augment(*args)
        real_features = jax.lax.stop_gradient(embed(real_c))
        return mean_embedding_distance(real_features[None], embed(syn_c)[None])[0]

    return jnp.sum(over_classes(one_class, (classes, real, syn), class_parallel, class_chunk))


def siamese_class_augment(key: jax.Array, strategy: str) -> Callable:
    """(class, real_c, syn_c) -> both batches through one Siamese DSA draw, the class's own."""
    def augment(c, real_c, syn_c):
        class_key = jax.random.fold_in(key, c)
        return (dsa.augment(class_key, real_c, strategy, siamese=True),
                dsa.augment(class_key, syn_c, strategy, siamese=True))
    return augment


def outer_iteration_function(module: nn.Module, config: Any, layout: Any, image_tx: optax.GradientTransformation,
                             state_type: Any, iteration_keys: Callable) -> Callable:
    """One DM iteration as a pure function of (state, dataset) -> (next state, loss per class),
    before `jax.jit`; `state_type`, `iteration_keys` and `image_tx` are condensation's."""
    batch_norm = uses_batch_norm(module)
    strategy = config.dsa_strategy

    def outer_iteration(state, dataset: data_lib.Dataset):
        init_key, step_key = iteration_keys(state.key, state.iteration)
        variables = module.init(init_key, state.images[0], train=False)   # a fresh, frozen network
        real = data_lib.sample_real(step_key, dataset, config.batch_real)
        aug_key = jax.random.fold_in(step_key, _DSA_STREAM)

        def embed(x):
            if batch_norm:   # training mode, as the reference's net; the updated statistics are dropped
                return module.apply(variables, x, train=True, method="embed", mutable=["batch_stats"])[0]
            return module.apply(variables, x, train=True, method="embed")

        augment = siamese_class_augment(aug_key, strategy) if dsa.parse_strategy(strategy) else None

        def loss_fn(images):
            return dm_loss(embed, real, layout.unpad(images), batch_norm, augment,
                           config.class_parallel, config.class_chunk)

        loss, grads = jax.value_and_grad(loss_fn)(state.images)
        updates, opt_state = image_tx.update(grads, state.opt_state, state.images)
        images = optax.apply_updates(state.images, updates)
        images, opt_state = jax.tree_util.tree_map(
            lambda x: jax.lax.with_sharding_constraint(x, layout.by_class()), (images, opt_state))
        return state_type(images, opt_state, state.key, state.iteration + 1), loss / layout.num_classes

    return outer_iteration
