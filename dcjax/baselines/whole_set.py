"""Networks trained on the whole training set, and each baseline end to end (`build`).

Herding and k-center select on the penultimate features of a network trained on all training
images (`feature_network`, `embed_dataset`); forgetting counts events while training such a network
(`record_correctness`, `forgetting_sets`). The selection itself is in `dcjax.baselines.selection`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcjax import compilation
from dcjax import data as data_lib
from dcjax.baselines.selection import (check_forgetting_rule, class_members, count_forgetting_events,
                                       forgetting_scores, herding, k_center, most_forgotten, random_real,
                                       set_from_indices)
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe
from dcjax.nets import describe_module, get_model
from dcjax.synthetic_set import SyntheticSet
from dcjax.training import accuracy, scan_batches, sgd_step, train_epochs

PyTree = Any

# Command-line method name -> the `method` recorded in the set's metadata.
METHODS = {"random": "random_real", "herding": "herding", "k_center": "k_center", "forgetting": "forgetting"}
# Epochs of the networks trained on the whole set (feature network, forgetting statistics). The paper
# does not say; this is dcjax's choice, and each set records the epochs and the accuracy reached.
DEFAULT_EPOCHS = 20


# ----------------------------------------------------------------------------- whole-set networks

def whole_set_module(dataset: data_lib.Dataset, model: str, **model_fields: Any) -> nn.Module:
    """The network `model` (with field overrides) for the dataset's classes and image shape."""
    return get_model(model, dataset.num_classes, tuple(dataset.image_shape), **model_fields)


def _optimizer(recipe: EvalRecipe) -> optax.GradientTransformation:
    """SGD momentum 0.9, weight decay 5e-4, constant lr 0.01: the evaluation recipe's first phase.
    (The recipe's lr drop only matters over its 300 epochs on a small set.)"""
    return recipe.optimizer(recipe.lr)


def check_epochs(epochs: int) -> None:
    """ConfigError unless `epochs` (of the whole-set network) is an integer >= 1."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs of the whole-set network (--feature_epochs) must be an integer >= 1, got {epochs!r}")


def require_embed(module: nn.Module) -> None:
    """ConfigError unless `module` has `embed` (penultimate features), as herding and k-center need."""
    if not hasattr(module, "embed"):
        raise ConfigError(f"{type(module).__name__} has no embed() for penultimate features; use a ConvNet "
                          f"variant as the feature network")


def feature_network(dataset: data_lib.Dataset, key: jax.Array, model: str = "ConvNet",
                    epochs: int = DEFAULT_EPOCHS, recipe: EvalRecipe = EvalRecipe(),
                    **model_fields: Any) -> tuple[nn.Module, PyTree]:
    """A network trained on the whole training set (the paper's feature extractor for herding and
    k-center): `epochs` shuffled passes in batches of recipe.batch_size (last batch smaller) with
    SGD momentum 0.9, weight decay 5e-4, lr 0.01. Returns (module, variables)."""
    check_epochs(epochs)
    module = whole_set_module(dataset, model, **model_fields)
    init_key, order_key = jax.random.split(key)
    variables = module.init(init_key, dataset.x_train[:1], train=False)
    tx = _optimizer(recipe)
    train = compilation.jit(lambda v, o, x, y, k: train_epochs(module.apply, tx, v, o, x, y, k, epochs,
                                                               recipe.batch_size))
    variables, _ = train(variables, tx.init(variables["params"]), dataset.x_train, dataset.y_train, order_key)
    return module, variables


def train_accuracy(module: nn.Module, variables: PyTree, dataset: data_lib.Dataset,
                   batch_size: int = 500) -> float:
    """Accuracy of the network on the whole training set, in evaluation mode."""
    program = compilation.jit(lambda v, x, y: accuracy(module.apply, v, x, y, batch_size))
    return float(program(variables, dataset.x_train, dataset.y_train))


def embed_dataset(module: nn.Module, variables: PyTree, x: jax.Array, batch_size: int = 500) -> np.ndarray:
    """(N, D) float32 penultimate features (`module.embed`, evaluation mode) of every image in `x`,
    computed in fixed-size batches (`training.scan_batches`)."""
    require_embed(module)

    def embed(v: PyTree, images: jax.Array) -> jax.Array:
        return module.apply(v, images, method="embed")

    def program(v: PyTree, x: jax.Array) -> jax.Array:
        _, features = scan_batches(lambda carry, batch, number: (carry, embed(v, batch)), None, x, batch_size)
        return features.reshape(x.shape[0], -1)

    return np.asarray(compilation.jit(program)(variables, jnp.asarray(x)))


# ----------------------------------------------------------------------------- forgetting events

def _train_mode_logits(apply_fn: Callable, variables: PyTree, x: jax.Array) -> jax.Array:
    """Logits as the training step sees them (batch statistics of the batch for batch-norm nets)."""
    if "batch_stats" in variables:
        return apply_fn(variables, x, train=True, mutable=["batch_stats"])[0]
    return apply_fn(variables, x, train=True)


def record_correctness(module: nn.Module, variables: PyTree, tx: optax.GradientTransformation,
                       x: jax.Array, y: jax.Array, key: jax.Array, epochs: int,
                       batch_size: int) -> tuple[PyTree, jax.Array]:
    """Train for `epochs` shuffled passes (full batches and a smaller last batch, so every example is
    seen once per epoch) and record, as Toneva et al. (2019) do, whether each example was classified
    correctly by the forward pass of the step that trains on it (before that step's update).

    Returns (trained variables, (epochs, N) bool correctness in x order). One jitted `lax.scan` over
    epochs with a `lax.scan` over batches inside; each step runs one extra forward pass (train mode)
    for the predictions, since `training.sgd_step` returns only the loss.
    """
    n = x.shape[0]

    def step(carry, idx, number):
        variables, opt_state = carry
        xb, yb = x[idx], y[idx]
        correct = jnp.argmax(_train_mode_logits(module.apply, variables, xb), -1) == yb
        variables, opt_state, _ = sgd_step(module.apply, tx, variables, opt_state, xb, yb)
        return (variables, opt_state), correct

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, n)
        carry, seen = scan_batches(step, carry, order, batch_size)
        return carry, jnp.zeros(n, bool).at[order].set(seen)

    def program(variables: PyTree, opt_state: PyTree, key: jax.Array) -> tuple[PyTree, jax.Array]:
        (variables, _), correct = jax.lax.scan(epoch, (variables, opt_state), jax.random.split(key, epochs))
        return variables, correct

    return compilation.jit(program)(variables, tx.init(variables["params"]), key)


def forgetting(dataset: data_lib.Dataset, ipc: int, key: jax.Array, model: str = "ConvNet",
               epochs: int = DEFAULT_EPOCHS, recipe: EvalRecipe = EvalRecipe(), rule: str = "events",
               **model_fields: Any) -> SyntheticSet:
    """The forgetting baseline (Toneva et al., 2019): train a network on the whole set for `epochs`
    epochs (the feature network's recipe), count each example's forgetting events, and keep per class
    the `ipc` most forgotten examples, the paper's "training samples which are easy to forget during
    training" (`rule`: see FORGETTING_RULES). Ties are broken by keyed uniform noise. With one epoch
    no event can happen: only ties (and never-learnt examples under "never_learnt_first") decide.
    """
    return forgetting_sets(dataset, (ipc,), key, model, epochs, recipe, rule, **model_fields)[ipc]


def forgetting_sets(dataset: data_lib.Dataset, ipcs: Sequence[int], key: jax.Array, model: str = "ConvNet",
                    epochs: int = DEFAULT_EPOCHS, recipe: EvalRecipe = EvalRecipe(),
                    rules: str | Sequence[str] = "events", **model_fields: Any) -> dict[Any, SyntheticSet]:
    """`forgetting` for several ipc (and rules) from one training run: {ipc: set} for one rule,
    {(rule, ipc): set} for a sequence of rules; each equal to what `forgetting(dataset, ipc, key, ...,
    rule=rule)` gives (the statistics depend on the key, not on ipc or rule)."""
    rule_list = [rules] if isinstance(rules, str) else list(rules)
    for rule in rule_list:
        check_forgetting_rule(rule)
    for ipc in ipcs:
        data_lib.check_batch_size(dataset, ipc, field="ipc")
    check_epochs(epochs)
    module = whole_set_module(dataset, model, **model_fields)
    init_key, order_key, tie_key = jax.random.split(key, 3)
    variables = module.init(init_key, dataset.x_train[:1], train=False)
    _, correct = record_correctness(module, variables, _optimizer(recipe), dataset.x_train, dataset.y_train,
                                    order_key, epochs, recipe.batch_size)
    correct = np.asarray(correct)
    tie_break = np.asarray(jax.random.uniform(tie_key, (correct.shape[1],)))
    members = class_members(dataset)
    sets = {}
    for rule in rule_list:
        scores = forgetting_scores(correct, rule)
        selection = {
            "rule": rule, "ranking": "per class, most forgetting events (correct at the previous presentation, "
                                     "wrong at this one)" + ("; never-learnt examples first" if rule != "events" else "")
                                     + "; ties by keyed random order (Toneva et al. 2019)",
            "network": describe_module(module), "epochs": epochs, "batch_size": recipe.batch_size,
            "last_epoch_online_accuracy": float(correct[-1].mean()),
            "examples_with_events": int((count_forgetting_events(correct) > 0).sum()),
            "never_learnt_examples": int((~correct.any(axis=0)).sum())}
        for ipc in ipcs:
            indices = most_forgotten(scores, members, ipc, tie_break)
            sets[rule, ipc] = set_from_indices(dataset, indices, "forgetting",
                                               {**selection, "selected_scores": scores[indices].ravel().tolist()})
    return {ipc: synset for (_, ipc), synset in sets.items()} if isinstance(rules, str) else sets


# ----------------------------------------------------------------------------- one method end to end

def check_method(method: str) -> str:
    """The metadata name of command-line method `method`; ConfigError for an unknown one."""
    if method not in METHODS:
        raise ConfigError(f"unknown baseline method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[method]


def build(method: str, dataset: data_lib.Dataset, ipc: int, key: jax.Array, model: str = "ConvNet",
          epochs: int = DEFAULT_EPOCHS, recipe: EvalRecipe = EvalRecipe(), forgetting_rule: str = "events",
          **model_fields: Any) -> SyntheticSet:
    """The baseline set of command-line method `method` (random | herding | k_center | forgetting).

    `model`, `model_fields`, `epochs` and `recipe` describe the network trained on the whole set
    (feature network for herding and k-center, the recorded network for forgetting, which ranks by
    `forgetting_rule`, see FORGETTING_RULES); random uses only the key."""
    check_method(method)
    data_lib.check_batch_size(dataset, ipc, field="ipc")
    if method == "random":
        return random_real(dataset, ipc, key)
    if method == "forgetting":
        return forgetting(dataset, ipc, key, model, epochs, recipe, forgetting_rule, **model_fields)
    require_embed(whole_set_module(dataset, model, **model_fields))   # before the training, not after
    module, variables = feature_network(dataset, key, model, epochs, recipe, **model_fields)
    provenance = {"network": describe_module(module), "epochs": epochs, "batch_size": recipe.batch_size,
                  "train_accuracy": train_accuracy(module, variables, dataset)}
    features = embed_dataset(module, variables, dataset.x_train)
    select = herding if method == "herding" else k_center
    return select(dataset, ipc, features, provenance)
