"""Mini-batch SGD over a small in-memory set, as one compiled loop.

Used twice: for the inner network update of condensation (plain SGD on the synthetic set) and for
training evaluation networks (SGD with momentum and weight decay). Epochs follow PyTorch's
`DataLoader(shuffle=True, drop_last=False)`: a fresh permutation each epoch, full batches and a
smaller final batch. Every shape is static, so the whole run is one `lax.scan` over epochs, each a
`lax.scan` over the full batches plus one step for the remainder (`scan_batches`).
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


def scan_batches(fn: Callable[[Any, PyTree, jax.Array], tuple[Any, PyTree]], carry: Any, xs: PyTree,
                 batch_size: int) -> tuple[Any, PyTree]:
    """`fn(carry, batch, batch_number) -> (carry, out)` over consecutive batches of `xs` (a pytree of
    arrays with a common leading axis): the full batches in one `lax.scan`, then one smaller batch
    for the remainder, as PyTorch's `DataLoader(drop_last=False)` does; shapes stay static.

    Returns the final carry and the per-example outputs concatenated along axis 0 (`out` must then
    have the batch as its leading axis), or None when `fn` returns None.
    """
    n = jax.tree_util.tree_leaves(xs)[0].shape[0]
    full, rest = divmod(n, batch_size)
    outs = []
    if full:
        batched = jax.tree_util.tree_map(lambda a: a[:full * batch_size].reshape((full, batch_size) + a.shape[1:]), xs)
        carry, out = jax.lax.scan(lambda c, b: fn(c, *b), carry, (batched, jnp.arange(full)))
        if out is not None:
            outs.append(jax.tree_util.tree_map(lambda o: o.reshape((full * batch_size,) + o.shape[2:]), out))
    if rest:
        carry, out = fn(carry, jax.tree_util.tree_map(lambda a: a[full * batch_size:], xs), jnp.asarray(full))
        if out is not None:
            outs.append(out)
    if not outs:
        return carry, None
    return carry, jax.tree_util.tree_map(lambda *parts: jnp.concatenate(parts), *outs)


def pass_order(key: jax.Array, n: int, steps: int, batch_size: int) -> jax.Array:
    """(steps, batch) indices into n images: consecutive shuffled passes over all of them, each a
    fresh permutation, so that within whole passes every image is drawn equally often (training
    by a number of steps rather than epochs)."""
    passes = -(-steps * batch_size // n)
    order = jnp.concatenate([jax.random.permutation(k, n) for k in jax.random.split(key, passes)])
    return order[:steps * batch_size].reshape(steps, batch_size)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def sgd_step(apply_fn: Callable, tx: optax.GradientTransformation, variables: PyTree,
             opt_state: PyTree, x: jax.Array, y: Any,
             loss: Callable[[jax.Array, Any], jax.Array] = cross_entropy) -> tuple[PyTree, PyTree, jax.Array]:
    """One optimiser step on a batch in training mode; batch statistics are updated if present.
    `loss(logits, y)` is the objective (default: cross-entropy with integer labels `y`; `y` may be
    any pytree the loss reads, e.g. labels and a teacher's logits for distillation)."""
    params, others = variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def loss_fn(p):
        if "batch_stats" in others:
            logits, updated = apply_fn({"params": p, **others}, x, train=True, mutable=["batch_stats"])
        else:
            logits, updated = apply_fn({"params": p, **others}, x, train=True), {}
        return loss(logits, y), updated

    (value, updated), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    new_variables = {**others, **updated, "params": optax.apply_updates(params, updates)}
    return new_variables, opt_state, value


def train_epochs(apply_fn: Callable, tx: optax.GradientTransformation, variables: PyTree,
                 opt_state: PyTree, x: jax.Array, y: jax.Array, key: jax.Array, epochs: int,
                 batch_size: int,
                 augment: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
                 on_epoch: Callable[[jax.Array], None] | None = None) -> tuple[PyTree, PyTree]:
    """`epochs` shuffled passes over (x, y) in batches of `batch_size` (last batch smaller).

    `augment(key, batch)`, if given, transforms each batch before its step (the reference's
    `epoch(..., aug=True)`). Its key is folded from the epoch key with _AUGMENT_STREAM and then the
    batch number, so the shuffles are those of a run without augmentation. `on_epoch(epoch)`, if
    given, runs (traced) at the end of every epoch, e.g. to report progress.
    """
    n = x.shape[0]
    if epochs <= 0:
        return variables, opt_state

    def epoch(carry, epoch_and_key):
        number, epoch_key = epoch_and_key
        order = jax.random.permutation(epoch_key, n) if n > batch_size else jnp.arange(n)

        def batch(carry, idx, number):
            variables, opt_state = carry
            xb = x[idx]
            if augment is not None:
                xb = augment(jax.random.fold_in(jax.random.fold_in(epoch_key, _AUGMENT_STREAM), number), xb)
            variables, opt_state, _ = sgd_step(apply_fn, tx, variables, opt_state, xb, y[idx])
            return (variables, opt_state), None

        carry, _ = scan_batches(batch, carry, order, batch_size)
        if on_epoch is not None:
            on_epoch(number)
        return carry, None

    (variables, opt_state), _ = jax.lax.scan(epoch, (variables, opt_state),
                                             (jnp.arange(epochs), jax.random.split(key, epochs)))
    return variables, opt_state


def accuracy(apply_fn: Callable, variables: PyTree, x: jax.Array, y: jax.Array,
             batch_size: int = 500) -> jax.Array:
    """Fraction of (x, y) classified correctly, in evaluation mode, in fixed-size batches."""
    def count_correct(total, batch, number):
        xb, yb = batch
        return total + jnp.sum(jnp.argmax(apply_fn(variables, xb, train=False), -1) == yb), None

    total, _ = scan_batches(count_correct, jnp.zeros((), jnp.int32), (x, y), batch_size)
    return total / x.shape[0]
