"""Coreset baselines of paper Table 1, saved as sets that every dcjax tool reads like condensed ones.

The paper (section 3.1, "Baselines") compares gradient matching with four coreset selections of
real training images, each evaluated by the same protocol as a condensed set:

* Random: "the training samples are randomly selected as the coreset" (`random_real`).
* Herding: "selects closest samples to the cluster center, is based on (Welling, 2009) and used
  in (Rebuffi et al., 2017; Castro et al., 2018 ...)" (`herding`).
* K-Center: "(Wolf, 2011; Sener & Savarese, 2018) picks multiple center points such that the
  largest distance between a data point and its nearest center is minimized" (`k_center`).
  "For Herding and K-Center, we use models trained on the whole dataset to extract features,
  compute l2 distance to centers" (`feature_network`, `embed_dataset`).
* Forgetting: "(Toneva et al., 2019) selects the training samples which are easy to forget
  during training" (`forgetting`).

Every baseline is a `SyntheticSet` of ipc real training images per class, class-major, with the
metadata of `set_metadata` (the method, the selected x_train indices and how they were chosen).
`build` runs one method end to end and `run` is what `bin/baselines.py` does: build, save into
`<out>/synthetic` (the layout of a condensation workdir) and write `<out>/baseline.json`.
Randomness comes only from the explicit `jax.random` key; herding and k-center are deterministic
given the features.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dcjax import compilation
from dcjax import data as data_lib
from dcjax.support.files import write_json
from dcjax.synthetic_set import SYNTHETIC_DIR, SyntheticSet, load_synthetic, save_synthetic
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe
from dcjax.nets import get_model
from dcjax.training import accuracy, sgd_step, train_epochs
from dcjax.support.lock import LOCK_FILE, WorkdirLock

PyTree = Any

# Command-line method name -> the `method` recorded in the set's metadata.
METHODS = {"random": "random_real", "herding": "herding", "k_center": "k_center", "forgetting": "forgetting"}
# Epochs of the networks trained on the whole set (feature network, forgetting statistics). The paper
# does not say; this is dcjax's choice, and each set records the epochs and the accuracy reached.
DEFAULT_EPOCHS = 20
BASELINE_FILE = "baseline.json"


# ----------------------------------------------------------------------------- sets and metadata

def set_metadata(dataset: data_lib.Dataset, ipc: int, method: str, indices: np.ndarray,
                 selection: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a baseline set: the fields of a condensed set's metadata that describe the
    data (so loaders and viewers need not know where a set came from), plus the method, the
    class-major x_train indices of the images and how they were chosen."""
    return {
        "dataset": dataset.name, "num_classes": dataset.num_classes, "class_names": list(dataset.class_names),
        "image_shape": list(dataset.image_shape), "mean": list(dataset.mean), "std": list(dataset.std),
        "normalisation": "images are (pixel/255 - mean) / std per channel; pixel = image * std + mean",
        "ipc": int(ipc), "label_order": "class-major: ipc images of class 0, then class 1, ...",
        "method": method, "selected_indices": np.asarray(indices).ravel().tolist(),
        "selection": selection,
    }


def set_from_indices(dataset: data_lib.Dataset, indices: np.ndarray, method: str,
                     selection: dict[str, Any]) -> SyntheticSet:
    """The set of training images `indices` ((num_classes, ipc) x_train indices, row c of class c)."""
    indices = np.asarray(indices, np.int64)
    images = np.asarray(dataset.x_train[jnp.asarray(indices.ravel())])
    labels = np.repeat(np.arange(dataset.num_classes, dtype=np.int32), indices.shape[1])
    return SyntheticSet(images, labels, set_metadata(dataset, indices.shape[1], method, indices, selection))


def random_real(dataset: data_lib.Dataset, ipc: int, key: jax.Array) -> SyntheticSet:
    """`ipc` real training images per class drawn uniformly without replacement, class-major."""
    data_lib.check_batch_size(dataset, ipc, field="ipc")
    indices = data_lib.sample_class_indices(key, dataset.class_index, dataset.class_counts, ipc)
    return set_from_indices(dataset, np.asarray(indices), "random_real",
                            {"rule": "uniform without replacement within each class"})


def class_members(dataset: data_lib.Dataset) -> list[np.ndarray]:
    """The x_train indices of each class, in increasing order."""
    index, counts = np.asarray(dataset.class_index), np.asarray(dataset.class_counts)
    return [index[c, :counts[c]].astype(np.int64) for c in range(dataset.num_classes)]


# ----------------------------------------------------------------------------- feature-space selection

def _as_features(features: Any) -> np.ndarray:
    features = np.asarray(features, np.float64)
    return features.reshape(len(features), -1)


def herding_order(features: Any, k: int) -> np.ndarray:
    """Indices of `k` rows chosen by herding (Welling, 2009), as iCaRL (Rebuffi et al., 2017) and
    E2E (Castro et al., 2018) use it: step j picks the unchosen row x minimising
    ||mu - (s + x) / j||, with mu the mean of all rows and s the sum of the j-1 rows chosen so far,
    so the running mean of the selection tracks the class mean. Ties go to the lower index.

    Expanded as ||r - x||^2 / j^2 with r = j mu - s, only ||x||^2 - 2 <r, x> depends on x: one
    matrix-vector product per step and O(n) extra memory (no n x d temporaries).
    """
    features = _as_features(features)
    mu, sq_norms = features.mean(axis=0), np.einsum("nd,nd->n", features, features)
    chosen, total = np.zeros(len(features), bool), np.zeros(features.shape[1])
    order = []
    for j in range(1, k + 1):
        score = sq_norms - 2.0 * features @ (j * mu - total)
        score[chosen] = np.inf
        pick = int(np.argmin(score))
        order.append(pick)
        chosen[pick], total = True, total + features[pick]
    return np.asarray(order, np.int64)


def _sq_distances(features: np.ndarray, sq_norms: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared l2 distances of every row to `centre`, without an n x d temporary."""
    return np.maximum(sq_norms - 2.0 * features @ centre + centre @ centre, 0.0)


def k_center_order(features: Any, k: int) -> np.ndarray:
    """Indices of `k` rows chosen by greedy k-center (Wolf, 2011; Sener & Savarese, 2018): repeatedly
    add the row farthest from its nearest chosen centre, the 2-approximation of the minimax
    facility-location problem the paper describes. Ties go to the lower index.

    The greedy needs a first centre. Sener & Savarese start from the labelled pool; with none here,
    it is the row closest to the class mean (the herding's first choice, deterministic and the most
    typical image), so ipc=1 gives one representative image rather than an arbitrary one.
    O(n) extra memory: the distance of each row to its nearest centre, updated per added centre.
    """
    features = _as_features(features)
    sq_norms = np.einsum("nd,nd->n", features, features)
    pick = int(np.argmin(_sq_distances(features, sq_norms, features.mean(axis=0))))
    order, nearest = [pick], np.full(len(features), np.inf)
    for _ in range(k - 1):
        nearest = np.minimum(nearest, _sq_distances(features, sq_norms, features[pick]))
        nearest[pick] = -np.inf   # chosen rows stay -inf: never chosen twice, even among duplicates
        pick = int(np.argmax(nearest))
        order.append(pick)
    return np.asarray(order, np.int64)


def select_per_class(dataset: data_lib.Dataset, ipc: int, features: Any,
                     order_fn: Callable[[np.ndarray, int], np.ndarray]) -> np.ndarray:
    """(num_classes, ipc) x_train indices: `order_fn` applied to each class's rows of `features`
    ((N, ...) aligned with x_train), one class at a time so memory stays O(class size x d)."""
    data_lib.check_batch_size(dataset, ipc, field="ipc")
    if len(features) != dataset.x_train.shape[0]:
        raise ConfigError(f"features has {len(features)} rows but {dataset.name} has {dataset.x_train.shape[0]} "
                          f"training images; compute one feature vector per x_train image (embed_dataset)")
    return np.stack([members[order_fn(np.asarray(features[members]), ipc)]
                     for members in class_members(dataset)])


def herding(dataset: data_lib.Dataset, ipc: int, features: Any,
            provenance: dict[str, Any] | None = None) -> SyntheticSet:
    """The herding baseline: per class, the `ipc` images whose running feature mean best tracks the
    class mean (`herding_order`). `provenance` (e.g. the feature network) joins the metadata."""
    indices = select_per_class(dataset, ipc, features, herding_order)
    return set_from_indices(dataset, indices, "herding", {
        "rule": "per class, greedy: step j adds the image minimising ||mu - mean of the j chosen features||, "
                "raw penultimate features, l2 (Welling 2009; Castro et al. 2018)", **(provenance or {})})


def k_center(dataset: data_lib.Dataset, ipc: int, features: Any,
             provenance: dict[str, Any] | None = None) -> SyntheticSet:
    """The k-center baseline: per class, greedy farthest-point centres in feature space
    (`k_center_order`). `provenance` (e.g. the feature network) joins the metadata."""
    indices = select_per_class(dataset, ipc, features, k_center_order)
    return set_from_indices(dataset, indices, "k_center", {
        "rule": "per class, greedy farthest point from the chosen centres, starting with the image closest "
                "to the class mean, raw penultimate features, l2 (Sener & Savarese 2018)", **(provenance or {})})


# ----------------------------------------------------------------------------- whole-set networks

def describe_module(module: nn.Module) -> dict[str, Any]:
    """The network's family and fields, JSON-ready (the same record as a condensed set's model_fields)."""
    fields = {k: getattr(module, k) for k in module.__dataclass_fields__ if k not in ("parent", "name")}
    return {"family": type(module).__name__, **fields}


def whole_set_module(dataset: data_lib.Dataset, model: str, **model_fields: Any) -> nn.Module:
    """The network `model` (with field overrides) for the dataset's classes and image shape."""
    return get_model(model, dataset.num_classes, tuple(dataset.image_shape), **model_fields)


def _optimizer(recipe: EvalRecipe) -> optax.GradientTransformation:
    """SGD momentum 0.9, weight decay 5e-4, constant lr 0.01: the evaluation recipe's first phase.
    (The recipe's lr drop only matters over its 300 epochs on a small set.)"""
    return recipe.optimizer(recipe.lr)


def _check_epochs(epochs: int) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"epochs of the whole-set network (--feature_epochs) must be an integer >= 1, got {epochs!r}")


def feature_network(dataset: data_lib.Dataset, key: jax.Array, model: str = "ConvNet",
                    epochs: int = DEFAULT_EPOCHS, recipe: EvalRecipe = EvalRecipe(),
                    **model_fields: Any) -> tuple[nn.Module, PyTree]:
    """A network trained on the whole training set (the paper's feature extractor for herding and
    k-center): `epochs` shuffled passes in batches of recipe.batch_size (last batch smaller) with
    SGD momentum 0.9, weight decay 5e-4, lr 0.01. Returns (module, variables)."""
    _check_epochs(epochs)
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
    computed in fixed-size batches (one compiled `lax.map`, plus one smaller batch for the rest)."""
    _require_embed(module)

    def embed(v: PyTree, images: jax.Array) -> jax.Array:
        return module.apply(v, images, method="embed")

    def program(v: PyTree, x: jax.Array) -> jax.Array:
        full, rest = divmod(x.shape[0], batch_size)
        parts = []
        if full:
            batches = x[:full * batch_size].reshape((full, batch_size) + x.shape[1:])
            feats = jax.lax.map(lambda b: embed(v, b), batches)
            parts.append(feats.reshape((full * batch_size,) + feats.shape[2:]))
        if rest:
            parts.append(embed(v, x[full * batch_size:]))
        return jnp.concatenate(parts).reshape(x.shape[0], -1)

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
    full, rest = divmod(n, batch_size)

    def step(carry, idx):
        variables, opt_state = carry
        xb, yb = x[idx], y[idx]
        correct = jnp.argmax(_train_mode_logits(module.apply, variables, xb), -1) == yb
        variables, opt_state, _ = sgd_step(module.apply, tx, variables, opt_state, xb, yb)
        return (variables, opt_state), correct

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, n)
        seen = []
        if full:
            carry, flags = jax.lax.scan(step, carry, order[:full * batch_size].reshape(full, batch_size))
            seen.append(flags.reshape(-1))
        if rest:
            carry, flags = step(carry, order[full * batch_size:])
            seen.append(flags)
        return carry, jnp.zeros(n, bool).at[order].set(jnp.concatenate(seen))

    def program(variables: PyTree, opt_state: PyTree, key: jax.Array) -> tuple[PyTree, jax.Array]:
        (variables, _), correct = jax.lax.scan(epoch, (variables, opt_state), jax.random.split(key, epochs))
        return variables, correct

    return compilation.jit(program)(variables, tx.init(variables["params"]), key)


def count_forgetting_events(correct_by_epoch: Any) -> np.ndarray:
    """(N,) number of forgetting events per example from an (epochs, N) correctness record: a
    presentation where the example is misclassified after being classified correctly at its previous
    presentation (Toneva et al., 2019). The first presentation can only learn, never forget."""
    correct = np.asarray(correct_by_epoch, bool)
    return np.sum(correct[:-1] & ~correct[1:], axis=0).astype(np.int64)


# How `forgetting` ranks examples. "events": by forgetting-event count alone, so a never-learnt
# example (never correct, hence never forgotten) ranks with the unforgettable ones; this is the
# paper's "training samples which are easy to forget during training", and the default.
# "never_learnt_first": Toneva et al.'s (2019) own ordering, never-learnt examples as forgotten
# infinitely often. With a briefly trained whole-set network the never-learnt examples are the
# ambiguous or mislabelled ones, and a set of them trains to near chance (Fashion-MNIST ipc 1:
# benchmarks/results/table1_fashion_mnist.md), far below the paper's forgetting rows.
FORGETTING_RULES = ("events", "never_learnt_first")


def check_forgetting_rule(rule: str) -> str:
    """`rule` if it is one of FORGETTING_RULES, else a ConfigError naming them."""
    if rule not in FORGETTING_RULES:
        raise ConfigError(f"unknown forgetting rule {rule!r}; choose one of {', '.join(FORGETTING_RULES)}")
    return rule


def forgetting_scores(correct_by_epoch: Any, rule: str = "events") -> np.ndarray:
    """(N,) ranking score: the forgetting-event count; under rule "never_learnt_first", examples
    never classified correctly score the number of epochs, more than any count can reach (at most
    epochs // 2), as Toneva et al. (2019) sort them (see FORGETTING_RULES)."""
    correct = np.asarray(correct_by_epoch, bool)
    events = count_forgetting_events(correct)
    if check_forgetting_rule(rule) == "events":
        return events
    return np.where(correct.any(axis=0), events, correct.shape[0])


def most_forgotten(scores: Any, members: list[np.ndarray], ipc: int, tie_break: Any) -> np.ndarray:
    """(num_classes, ipc) x_train indices: in each class (`members[c]` its indices), the `ipc`
    examples with the highest score; equal scores are ordered by increasing `tie_break` ((N,) values,
    e.g. keyed uniform noise, so ties do not depend on the order of the data file)."""
    scores, tie_break = np.asarray(scores), np.asarray(tie_break)
    return np.stack([m[np.lexsort((tie_break[m], -scores[m]))[:ipc]] for m in members])


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
    _check_epochs(epochs)
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


def _require_embed(module: nn.Module) -> None:
    if not hasattr(module, "embed"):
        raise ConfigError(f"{type(module).__name__} has no embed() for penultimate features; use a ConvNet "
                          f"variant as the feature network")


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
    _require_embed(whole_set_module(dataset, model, **model_fields))   # before the training, not after
    module, variables = feature_network(dataset, key, model, epochs, recipe, **model_fields)
    provenance = {"network": describe_module(module), "epochs": epochs, "batch_size": recipe.batch_size,
                  "train_accuracy": train_accuracy(module, variables, dataset)}
    features = embed_dataset(module, variables, dataset.x_train)
    select = herding if method == "herding" else k_center
    return select(dataset, ipc, features, provenance)


# ----------------------------------------------------------------------------- bin/baselines.py

def _occupant(out: str) -> str | None:
    """What already lives in `out`: None if it is missing or empty, else the metadata method of the set
    there (from baseline.json, else from synthetic/) or a phrase describing foreign contents."""
    if not os.path.exists(out):
        return None
    entries = set(os.listdir(out)) - {LOCK_FILE}
    if not entries:
        return None
    if BASELINE_FILE in entries:
        try:
            with open(os.path.join(out, BASELINE_FILE)) as f:
                return str(json.load(f).get("method"))
        except (OSError, ValueError, AttributeError):
            return f"an unreadable {BASELINE_FILE}"
    if SYNTHETIC_DIR in entries:
        return str(load_synthetic(out).metadata.get("method", "a condensed set"))
    return "files that are not a dcjax set"


def check_out_dir(out: str, method: str) -> None:
    """Refuse an `out` that holds anything but an earlier set of the same method (which is replaced)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {out} is a file; give the path of a new or empty directory")
    occupant = _occupant(out)
    if occupant not in (None, check_method(method)):
        what = f"a {occupant!r} baseline set" if occupant in METHODS.values() else occupant
        raise ConfigError(f"--out {out} already holds {what}; give a new or empty --out, or delete that "
                          f"directory to replace it")


def run(out: str, method: str, dataset_name: str, ipc: int, seed: int = 0, data_dir: str | None = None,
        data_source: str = "auto", model: str = "ConvNet", epochs: int = DEFAULT_EPOCHS, batch_size: int = 256,
        forgetting_rule: str = "events", **model_fields: Any) -> dict[str, Any]:
    """Build baseline `method` and save it as `<out>/synthetic` (so `dcjax.load_synthetic(out)` reads
    it like a condensation workdir) plus `<out>/baseline.json` (settings, timing, selection record).

    `out` must be missing, empty, or an earlier output of the same method. Returns the JSON record.
    """
    start = time.time()
    recorded_method = check_method(method)
    if not isinstance(ipc, int) or ipc < 1:
        raise ConfigError(f"--ipc must be an integer >= 1 (images per class), got {ipc!r}")
    _check_epochs(epochs)
    check_forgetting_rule(forgetting_rule)
    check_out_dir(out, method)
    if method != "random":   # a bad network name or field fails now, not after loading the data
        module = get_model(model, 1, **model_fields)
        if method != "forgetting":
            _require_embed(module)
    dataset = data_lib.load(dataset_name, data_dir, data_source)
    smallest = int(np.min(np.asarray(dataset.class_counts)))
    if ipc > smallest:
        raise ConfigError(f"--ipc={ipc} but the smallest class of {dataset.name} has only {smallest} "
                          f"training images; choose --ipc between 1 and {smallest}")
    loaded = time.time()
    record: dict[str, Any] = {
        "method": recorded_method, "dataset": dataset.name, "data_dir": data_dir, "data_source": data_source,
        "ipc": ipc, "seed": seed, "status": "running", "backend": jax.default_backend()}
    if method != "random":
        record.update(model=model, model_fields=model_fields, epochs=epochs, batch_size=batch_size)
    if method == "forgetting":
        record.update(forgetting_rule=forgetting_rule)
    with WorkdirLock(out):
        check_out_dir(out, method)   # again, now that no other run can write here
        write_json(os.path.join(out, BASELINE_FILE), record)
        synset = build(method, dataset, ipc, jax.random.PRNGKey(seed), model, epochs,
                       EvalRecipe(batch_size=batch_size), forgetting_rule, **model_fields)
        selected = time.time()
        # Where the real data came from, so bin/evaluate.py finds its test split without flags.
        synset.metadata.update(data_dir=os.path.abspath(data_dir) if data_dir else None, data_source=data_source)
        path = save_synthetic(os.path.join(out, SYNTHETIC_DIR), synset)
        record.update(status="done", synthetic=path, selection=synset.metadata["selection"], seconds={
            "load_data": round(loaded - start, 2), "select": round(selected - loaded, 2),
            "total": round(time.time() - start, 2)})
        write_json(os.path.join(out, BASELINE_FILE), record)
    return record
