"""Second stage of the paper: train fresh networks on a (synthetic) set, test on the real test set.

The recipe is the reference's `evaluate_synset`: SGD with momentum 0.9 and weight decay 5e-4,
lr 0.01 for epochs 0..E//2+1, then lr x0.1 with a fresh momentum buffer until epoch E inclusive
(so E+1 epochs in all, as the reference's `range(Epoch+1)`), batch 256, shuffled. The N networks
are independent and train at the same time under `jax.vmap` over their keys (or one after another
with `parallel='map'`), all epochs inside one compiled program. `parallel='auto'` picks 'vmap' on
accelerators and 'map' on CPU, where XLA runs the vmapped (grouped) convolutions of several
networks slower than one network at a time, and with far more memory (`python bin/bench.py
--only=eval`; figures in benchmarks/results/bench_cpu_eval.md). With a mesh of several devices the
networks are split over them.

`EvalRecipe` comes from a config (`from_config`) or from what a saved set records (`of_set`);
`evaluate` returns the accuracies, `evaluate_set` the JSON-ready record runs and reports keep.
Progress is reported from inside the compiled program, about PROGRESS_REPORTS_PER_NETWORK times
per network.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from dcjax import augment as augment_lib
from dcjax import compilation, dsa
from dcjax.configuration import net_overrides
from dcjax.nets import describe_module, get_model, instance_norm_twin
from dcjax.sharding import put_replicated, shard_over_devices, to_host
from dcjax.support.signals import wait_until_ready
from dcjax.training import accuracy, train_epochs

# (network index, epochs done) -> None: told as evaluation networks train (see `evaluate`).
Progress = Callable[[int, int], None]
# (key, images, labels, network number) -> trained variables (see `score_networks`).
Trainer = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], Any]


@dataclasses.dataclass(frozen=True)
class EvalRecipe:
    """How evaluation networks are trained (defaults: paper / reference, no augmentation).

    `augmentation` is a `dcjax.augment` strategy applied to every training batch ('none', or ops
    such as 'crop_scale_rotate'), or 'dsa:<ops>' for DSA's DiffAugment (`dcjax.dsa`, e.g.
    'dsa:color_crop_cutout_flip_scale_rotate'); the reference picks it per setting (`augment.default_strategy`)
    and with one trains 1000 epochs instead of 300, which `epochs` leaves to the caller.
    """
    epochs: int = 300
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    test_batch_size: int = 500
    parallel: str = "auto"   # 'vmap': all networks at once; 'map': one after another; 'auto': by backend
    augmentation: str = "none"

    def phase_epochs(self) -> tuple[int, int]:
        """Epochs at the initial and at the decayed learning rate (reference: E//2+2 and the rest of E+1)."""
        first = min(self.epochs // 2 + 2, self.epochs + 1)
        return first, self.epochs + 1 - first

    def optimizer(self, lr: float) -> optax.GradientTransformation:
        # PyTorch SGD adds weight_decay * param to the gradient before momentum, as here.
        return optax.chain(optax.add_decayed_weights(self.weight_decay),
                           optax.sgd(lr, momentum=self.momentum))

    @classmethod
    def from_config(cls, config: Any) -> "EvalRecipe":
        """The recipe of `config.eval`, with augmentation 'auto' resolved as the reference's
        get_daparam (`augment.default_strategy`) for the config's dataset and evaluation model."""
        e = config.eval
        augmentation = e.get("augmentation", "none")
        strategy = config.get("dsa_strategy", dsa.DEFAULT_STRATEGY)
        if augmentation == "auto":
            uses_dsa = config.get("method", "dc") in ("dsa", "dm") and dsa.parse_strategy(strategy)
            augmentation = "dsa" if uses_dsa else augment_lib.default_strategy(config.dataset, e.get("model"))
        if augmentation == "dsa":
            augmentation = f"dsa:{strategy}"
        return cls(epochs=e.epochs, batch_size=e.batch_size, lr=e.lr, momentum=e.momentum,
                   weight_decay=e.weight_decay, test_batch_size=e.test_batch_size, parallel=e.parallel,
                   augmentation=augmentation)

    @classmethod
    def of_set(cls, metadata: dict[str, Any]) -> "EvalRecipe":
        """The recipe a saved set records (condensed sets do); for a set that records none (coreset
        baselines), the paper's recipe for its dataset: MNIST 1000 epochs with crop/scale/rotate,
        300 epochs without augmentation otherwise."""
        if metadata.get("eval_recipe"):
            fields = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in metadata["eval_recipe"].items() if k in fields})
        augmentation = augment_lib.default_strategy(str(metadata.get("dataset", "")), None)
        return cls(epochs=1000 if augmentation != "none" else 300, augmentation=augmentation)


def recipe_from_fields(fields: Any, epochs: int) -> EvalRecipe:
    """The recipe of an application config's `recipe` fields (batch_size, lr, momentum,
    weight_decay, test_batch_size, parallel, augmentation) with `epochs`."""
    return EvalRecipe(epochs=int(epochs), batch_size=fields.batch_size, lr=fields.lr, momentum=fields.momentum,
                      weight_decay=fields.weight_decay, test_batch_size=fields.test_batch_size,
                      parallel=fields.parallel, augmentation=fields.augmentation)


def check_augmentation(augmentation: str) -> str:
    """A recipe's augmentation, checked and spelt out: 'none', DC augmentation ops ('crop_scale_rotate'),
    or DSA ('dsa' -> 'dsa:<the default DSA ops>', 'dsa:<ops>'); ConfigError naming the valid values."""
    if augmentation == "dsa":
        return f"dsa:{dsa.DEFAULT_STRATEGY}"
    if augmentation.startswith("dsa:"):
        dsa.parse_strategy(augmentation[len("dsa:"):])
    else:
        augment_lib.parse_strategy(augmentation)
    return augmentation


def training_augmentation(augmentation: str) -> Callable[[jax.Array, jax.Array], jax.Array] | None:
    """`augment(key, batch)` of a recipe's augmentation: None for 'none', DSA's DiffAugment
    (non-Siamese, one op per batch) for 'dsa:<ops>', else the DC augmentation's ops."""
    if augmentation == "none":
        return None
    augmentation = check_augmentation(augmentation)
    if augmentation.startswith("dsa:"):
        return functools.partial(dsa.augment, strategy=augmentation[len("dsa:"):])
    return functools.partial(augment_lib.augment, strategy=augmentation)


def evaluation_model(config: Any, condensing_module: nn.Module, num_classes: int,
                     image_shape: tuple[int, ...]) -> nn.Module:
    """The network a condensation config evaluates its set with: `config.eval.model` (with the
    config's `net` overrides that family accepts), else the condensing network with batch norm
    swapped for its instance-norm twin, as the reference's eval mode 'S' does."""
    if config.eval.get("model"):
        return get_model(config.eval.model, num_classes, tuple(image_shape),
                         **net_overrides(config, config.eval.model))
    return instance_norm_twin(condensing_module)


# The host side of progress reports: `evaluate(progress=...)` installs its callback here for the
# duration of the call, so that compiled programs (cached per network and recipe) stay reusable.
_progress_listeners: list[Progress] = []
PROGRESS_REPORTS_PER_NETWORK = 50


def _tell_listeners(network: Any, epochs_done: Any) -> None:
    for listener in _progress_listeners:
        listener(int(network), int(epochs_done))


def _epoch_reporter(network: jax.Array, total_epochs: int, offset: int) -> Callable[[jax.Array], None]:
    """An `on_epoch` hook for `train_epochs` that reports about PROGRESS_REPORTS_PER_NETWORK times
    per network (a host callback every epoch would cost a device sync per step on accelerators)."""
    every = max(1, total_epochs // PROGRESS_REPORTS_PER_NETWORK)

    def on_epoch(epoch: jax.Array) -> None:
        done = epoch + 1 + offset
        jax.lax.cond((done % every == 0) | (done == total_epochs),
                     lambda: jax.debug.callback(_tell_listeners, network, done), lambda: None)

    return on_epoch


def train_network(module: nn.Module, recipe: EvalRecipe, key: jax.Array, x_train: jax.Array,
                  y_train: jax.Array, network: jax.Array | int = 0) -> Any:
    """The variables of a freshly initialised `module` trained on (x_train, y_train) by `recipe`:
    a new optimiser (momentum buffer reset) for the decayed-lr phase, as the reference builds one.
    Progress listeners hear of it as network number `network`."""
    init_key, key_a, key_b = jax.random.split(key, 3)
    variables = module.init(init_key, x_train[:1], train=False)
    epochs_a, epochs_b = recipe.phase_epochs()
    augment = training_augmentation(recipe.augmentation)
    for lr, epochs, k, offset in ((recipe.lr, epochs_a, key_a, 0), (recipe.lr * 0.1, epochs_b, key_b, epochs_a)):
        tx = recipe.optimizer(lr)
        variables, _ = train_epochs(module.apply, tx, variables, tx.init(variables["params"]),
                                    x_train, y_train, k, epochs, recipe.batch_size, augment,
                                    on_epoch=_epoch_reporter(jnp.asarray(network), epochs_a + epochs_b, offset))
    return variables


def evaluate(module: nn.Module, images: Any, labels: Any, x_test: jax.Array, y_test: jax.Array,
             key: jax.Array, num_models: int, recipe: EvalRecipe = EvalRecipe(),
             mesh: Mesh | None = None, progress: Progress | None = None) -> np.ndarray:
    """Test accuracies (fractions, shape (num_models,)) of `num_models` networks trained on the set.

    With a `mesh` of several devices the networks are split over all of its devices (each device
    trains its share as `recipe.parallel` says); network i gets the same key, hence the same
    accuracy up to float rounding, whatever the device count. `progress(network, epochs_done)` is
    called from the running program as networks train (about 50 times per network). The wait for
    the result returns to Python regularly, so Ctrl-C stops an evaluation at once.
    """
    return score_networks(module, images, labels, ((x_test, y_test),), key, num_models, recipe, mesh,
                          progress)[:, 0]


def score_networks(module: nn.Module, images: Any, labels: Any, test_sets: Sequence[tuple[jax.Array, jax.Array]],
                   key: jax.Array, num_models: int, recipe: EvalRecipe = EvalRecipe(),
                   mesh: Mesh | None = None, progress: Progress | None = None,
                   trainer: Trainer | None = None) -> np.ndarray:
    """Accuracies (num_models, len(test_sets)) of `num_models` networks trained on (images, labels)
    as `evaluate` trains them, each scored on every (x, y) of `test_sets` (e.g. a validation and a
    test split). `trainer(key, images, labels, network) -> variables` replaces the recipe's
    training (`train_network`) when given; it must be hashable (compiled programs are cached by it).
    """
    keys = jax.random.split(key, num_models)
    parallel = resolve_parallel(recipe.parallel)
    images = jnp.asarray(images, jnp.float32)
    labels = jnp.asarray(labels, jnp.int32)
    test_sets = tuple((jnp.asarray(x), jnp.asarray(y)) for x, y in test_sets)
    networks = (keys, jnp.arange(num_models))
    if progress is not None:
        _progress_listeners.append(progress)
    try:
        if mesh is None or mesh.devices.size == 1:
            accs = _train_and_test_all(module, recipe, parallel, trainer)(networks, images, labels, test_sets)
        else:
            program = _train_and_test_sharded(module, recipe, parallel, mesh, num_models, trainer)
            accs = program(*put_replicated((networks, images, labels, test_sets), mesh))
        return to_host(wait_until_ready(accs))
    finally:
        if progress is not None:
            _progress_listeners.remove(progress)


def scoring_program(module: nn.Module, recipe: EvalRecipe, trainer: Trainer | None = None) -> Callable:
    """The compiled one-device program of `score_networks` (cached): ((keys, network numbers),
    images, labels, test_sets) -> accuracies, for callers that place its inputs themselves (e.g. one
    program per device at once). It does not wait for its result."""
    return _train_and_test_all(module, recipe, resolve_parallel(recipe.parallel), trainer)


def release_programs() -> None:
    """Forget the compiled evaluation programs (computations in flight keep theirs): for callers
    that evaluate many different networks once each, such as architecture search."""
    _train_and_test_all.cache_clear()
    _train_and_test_sharded.cache_clear()


def resolve_parallel(parallel: str) -> str:
    """'auto' as the backend wants it ('map' on CPU, 'vmap' elsewhere); other modes unchanged."""
    if parallel == "auto":
        return "map" if jax.default_backend() == "cpu" else "vmap"
    return parallel


def evaluation_program(module: nn.Module, recipe: EvalRecipe, parallel: str, trainer: Trainer | None = None):
    """((keys, network numbers), images, labels, test_sets) -> accuracies (len(keys), len(test_sets))
    of networks trained by `trainer` (default: `train_network` with `recipe`), before `jit`."""
    def train(key, images, labels, network):
        if trainer is not None:
            return trainer(key, images, labels, network)
        return train_network(module, recipe, key, images, labels, network)

    def scores(variables, test_sets):
        return jnp.stack([accuracy(module.apply, variables, x, y, recipe.test_batch_size) for x, y in test_sets])

    def run(networks: tuple[jax.Array, jax.Array], images: jax.Array, labels: jax.Array,
            test_sets: tuple[tuple[jax.Array, jax.Array], ...]) -> jax.Array:
        if parallel == "map":
            return jax.lax.map(lambda n: scores(train(n[0], images, labels, n[1]), test_sets), networks)
        # The networks train together; their test passes run one network at a time, since N
        # networks' activations on a 500-image test batch at once (20 ConvNet-128: ~5 GB per
        # layer) is what exhausted memory when the whole program was vmapped.
        variables = jax.vmap(lambda n: train(n[0], images, labels, n[1]))(networks)
        return jax.lax.map(lambda v: scores(v, test_sets), variables)

    return run


def evaluate_set(images: Any, labels: Any, test_set: tuple[jax.Array, jax.Array], module: nn.Module,
                 recipe: EvalRecipe, key: jax.Array, num_models: int, mesh: Mesh | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """`evaluate`, as the JSON record runs and reports keep: the network, per-network accuracies,
    mean, std, epochs and wall time."""
    start = time.time()
    accs = evaluate(module, images, labels, *test_set, key, num_models, recipe, mesh, progress)
    return {"model": describe_module(module), "accuracies": [float(a) for a in accs],
            "mean": float(np.mean(accs)), "std": float(np.std(accs)), "num_models": int(num_models),
            "epochs": recipe.epochs, "augmentation": recipe.augmentation, "seconds": round(time.time() - start, 2)}


@functools.lru_cache(maxsize=None)
def _train_and_test_all(module: nn.Module, recipe: EvalRecipe, parallel: str, trainer: Trainer | None):
    """The compiled evaluation of a (network, recipe, mode): repeated evaluations of a run reuse it."""
    return compilation.jit(evaluation_program(module, recipe, parallel, trainer))


@functools.lru_cache(maxsize=None)
def _train_and_test_sharded(module: nn.Module, recipe: EvalRecipe, parallel: str, mesh: Mesh, num_models: int,
                            trainer: Trainer | None):
    """As `_train_and_test_all`, with the networks split over the devices of `mesh`."""
    return compilation.jit(shard_over_devices(evaluation_program(module, recipe, parallel, trainer), mesh,
                                              num_models))
