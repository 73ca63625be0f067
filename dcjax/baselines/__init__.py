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
metadata of `dcjax.synthetic_set.set_metadata` (the method, the selected x_train indices and how
they were chosen).
`build` runs one method end to end; `bin/baselines.py` builds one, saves it into `<out>/synthetic`
(the layout of a condensation workdir) and writes `<out>/baseline.json`.
Randomness comes only from the explicit `jax.random` key; herding and k-center are deterministic
given the features.

The package's modules: `selection` (which training images each method keeps, given features or
forgetting statistics; no training) and `whole_set` (the networks trained on the whole training
set, forgetting statistics, and `build`). Every public name of both is importable from here.
"""
from dcjax.baselines.selection import (FORGETTING_RULES, check_forgetting_rule, class_members,
                                       count_forgetting_events, forgetting_scores, herding, herding_order,
                                       k_center, k_center_order, most_forgotten, random_real, select_per_class,
                                       set_from_indices)
from dcjax.baselines.whole_set import (DEFAULT_EPOCHS, METHODS, build, check_epochs, check_method,
                                       embed_dataset, feature_network, forgetting, forgetting_sets,
                                       record_correctness, require_embed, train_accuracy, whole_set_module)

__all__ = ["FORGETTING_RULES", "check_forgetting_rule", "class_members", "count_forgetting_events",
           "forgetting_scores", "herding", "herding_order", "k_center", "k_center_order", "most_forgotten",
           "random_real", "select_per_class", "set_from_indices",
           "DEFAULT_EPOCHS", "METHODS", "build", "check_epochs", "check_method", "embed_dataset",
           "feature_network", "forgetting", "forgetting_sets", "record_correctness", "require_embed",
           "train_accuracy", "whole_set_module"]
