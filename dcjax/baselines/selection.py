"""Coreset selection: which real training images a baseline keeps, given per-image features or
forgetting statistics (no network is trained here; `dcjax.baselines.whole_set` does that).

Random, herding and k-center selection, forgetting-event counting and ranking, and the
`SyntheticSet` of the chosen x_train indices (`set_from_indices`). Herding and k-center are
deterministic given the features; random selection and forgetting tie-breaks use explicit keys.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from dcjax import data as data_lib
from dcjax.errors import ConfigError
from dcjax.synthetic_set import SyntheticSet, set_metadata


# ----------------------------------------------------------------------------- sets and metadata

def set_from_indices(dataset: data_lib.Dataset, indices: np.ndarray, method: str,
                     selection: dict[str, Any]) -> SyntheticSet:
    """The set of training images `indices` ((num_classes, ipc) x_train indices, row c of class c)."""
    indices = np.asarray(indices, np.int64)
    images = np.asarray(dataset.x_train[jnp.asarray(indices.ravel())])
    labels = np.repeat(np.arange(dataset.num_classes, dtype=np.int32), indices.shape[1])
    return SyntheticSet(images, labels, set_metadata(
        dataset, indices.shape[1], method=method, selected_indices=indices.ravel().tolist(), selection=selection))


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


# ----------------------------------------------------------------------------- forgetting events

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
