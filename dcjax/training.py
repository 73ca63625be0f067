"""Mini-batch SGD over a small in-memory set, as one compiled loop.

Used twice: for the inner network update of condensation (plain SGD on the synthetic set) and for
training evaluation networks (SGD with momentum and weight decay). Epochs follow PyTorch's
`DataLoader(shuffle=True, drop_last=False)`: a fresh permutation each epoch, full batches and a
smaller final batch. Every shape is static, so the whole run is a single `lax.scan`.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

PyTree = Any
# fold_in tag of the augmentation keys: far from the small counters that split and permutation
# derive from the same epoch key (split(k, n)[i] is fold_in(k, i) with partitionable threefry).
_AUGMENT_STREAM = 0x61756721


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def sgd_step(apply_fn: Callable, tx: optax.GradientTransformation, variables: PyTree,
             opt_state: PyTree, x: jax.Array, y: jax.Array) -> tuple[PyTree, PyTree, jax.Array]:
    """One optimiser step on a batch in training mode; batch statistics are updated if present."""
    params, others = variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def loss_fn(p):
        if "batch_stats" in others:
            logits, updated = apply_fn({"params": p, **others}, x, train=True, mutable=["batch_stats"])
        else:
            logits, updated = apply_fn({"params": p, **others}, x, train=True), {}
        return cross_entropy(logits, y), updated

    (loss, updated), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    new_variables = {**others, **updated, "params": optax.apply_updates(params, updates)}
    return new_variables, opt_state, loss


def train_epochs(apply_fn: Callable, tx: optax.GradientTransformation, variables: PyTree,
                 opt_state: PyTree, x: jax.Array, y: jax.Array, key: jax.Array, epochs: int,
                 batch_size: int,
                 augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None) -> tuple[PyTree, PyTree]:
    """`epochs` shuffled passes over (x, y) in batches of `batch_size` (last batch smaller).

    `augment(key, batch)`, if given, transforms each batch before its step (the reference's
    `epoch(..., aug=True)`). Its key is folded from the epoch key with _AUGMENT_STREAM and then the
    batch number, so the shuffles are those of a run without augmentation.
    """
    n = x.shape[0]
    full, rest = divmod(n, batch_size)
    if epochs <= 0:
        return variables, opt_state

    def epoch(carry, epoch_key):
        variables, opt_state = carry
        order = jax.random.permutation(epoch_key, n) if n > batch_size else jnp.arange(n)

        def batch(carry, idx_and_number):
            variables, opt_state = carry
            idx, number = idx_and_number
            xb = x[idx]
            if augment is not None:
                xb = augment(jax.random.fold_in(jax.random.fold_in(epoch_key, _AUGMENT_STREAM), number), xb)
            variables, opt_state, _ = sgd_step(apply_fn, tx, variables, opt_state, xb, y[idx])
            return (variables, opt_state), None

        carry = (variables, opt_state)
        if full:
            batches = (order[:full * batch_size].reshape(full, batch_size), jnp.arange(full))
            carry, _ = jax.lax.scan(batch, carry, batches)
        if rest:
            carry, _ = batch(carry, (order[full * batch_size:], full))
        return carry, None

    (variables, opt_state), _ = jax.lax.scan(epoch, (variables, opt_state), jax.random.split(key, epochs))
    return variables, opt_state


def accuracy(apply_fn: Callable, variables: PyTree, x: jax.Array, y: jax.Array,
             batch_size: int = 500) -> jax.Array:
    """Fraction of (x, y) classified correctly, in evaluation mode, in fixed-size batches."""
    n = x.shape[0]
    full, rest = divmod(n, batch_size)

    def correct(xb, yb):
        return jnp.sum(jnp.argmax(apply_fn(variables, xb, train=False), -1) == yb)

    total = jnp.zeros((), jnp.int32)
    if full:
        xs = x[:full * batch_size].reshape((full, batch_size) + x.shape[1:])
        ys = y[:full * batch_size].reshape(full, batch_size)
        total = jax.lax.scan(lambda t, b: (t + correct(*b), None), total, (xs, ys))[0]
    if rest:
        total = total + correct(x[full * batch_size:], y[full * batch_size:])
    return total / n
