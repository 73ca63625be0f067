"""Architecture search with condensed proxies (paper section 3.2, Table 4, Figure F5).

Every candidate ConvNet of the search space (`dcjax.apps.search_space`) is trained on each proxy
training set and scored on a validation split of real training images; the candidates are ranked
by that score; the top k of each proxy are then trained on the whole training set (the ground
truth), and each proxy is judged by how well its ranking of its own top k agrees with the ground
truth's (Spearman's rho) and by the whole-set test accuracy of the best architecture it selects.

Proxies (`config.proxies`):

* ``random``, ``herding``: ipc real images per class of the training split (herding on the
  features of a network trained on that split, `config.herding`), as dcjax.baselines builds them;
* ``dcjax``: a condensed set; `config.condensed_set` names any saved one, else the search
  condenses one itself with `config.condense` on the training split (resumable, in
  `<workdir>/condense`), so that it never sees the validation images;
* ``early_stopping``: the whole training split, for as many SGD steps as proxy training takes
  (Li & Talwalkar 2020, as the paper compares).

Decisions the paper leaves open, taken here: the validation split is `config.holdout` random
training images (default 5 000, or 10% of smaller training sets; `dcjax.data.hold_out`), drawn by
the seed and excluded from every proxy and from whole-set training; a candidate's score is its mean
validation accuracy over `config.seeds` networks; every candidate starts from the same initial
weights on every proxy (its keys depend on the candidate, not the proxy); "the best selected
architecture" of a proxy is the one of its top k with the best whole-set validation accuracy, and
its whole-set *test* accuracy is what Table 4's first row reports; the whole-set networks train by
the evaluation recipe for `config.whole.epochs` epochs (the paper does not state them).

Every finished (proxy, candidate) is appended at once to `<workdir>/candidates.jsonl`; a search
started again in the same workdir trains only what is missing. Results: `nas.json`, `nas.md` and
`nas_scatter.png` (proxy vs whole-set validation accuracy, one panel per proxy) in the workdir.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from dcjax import baselines
from dcjax import data as data_lib
from dcjax.apps import ranking
from dcjax.apps.search_space import Architecture, grid
from dcjax.configuration import root_keys
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe, recipe_from_fields, release_programs, scoring_program, training_augmentation
from dcjax.sharding import to_host
from dcjax.support.files import atomic_path, write_json, write_text
from dcjax.support.progress import progress
from dcjax.support.results_log import ResultsLog
from dcjax.support.signals import wait_until_ready
from dcjax.synthetic_set import SyntheticSet, load_synthetic, save_synthetic
from dcjax.training import pass_order, sgd_step

PROXIES = ("random", "herding", "dcjax", "early_stopping")
WHOLE = "whole"
RESULTS_LOG = "candidates.jsonl"


# ----------------------------------------------------------------------------- configuration

def validate(config: Any, num_candidates: int) -> None:
    """ConfigError naming the first unusable field of a search config."""
    proxies = tuple(config.proxies)
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown or not proxies or len(set(proxies)) != len(proxies):
        raise ConfigError(f"config.proxies must list distinct proxies from {PROXIES}, got {list(proxies)}")
    for field in ("ipc", "seeds", "epochs", "top_k"):
        value = config[field]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"config.{field} must be an integer >= 1, got {value!r}")
    if config.top_k > num_candidates:
        raise ConfigError(f"config.top_k={config.top_k} is larger than the search space's {num_candidates} "
                          f"candidates; lower config.top_k or widen config.space")
    if config.ground_truth not in ("top_k", "all"):
        raise ConfigError(f"config.ground_truth must be 'top_k' or 'all', got {config.ground_truth!r}")
    if not isinstance(config.whole.epochs, int) or config.whole.epochs < 1:
        raise ConfigError(f"config.whole.epochs must be an integer >= 1, got {config.whole.epochs!r}")
    if config.get("holdout") is not None and (not isinstance(config.holdout, int) or config.holdout < 1):
        raise ConfigError(f"config.holdout must be unset or an integer >= 1, got {config.holdout!r}")
    if jax.process_count() > 1:
        raise ConfigError("architecture search runs in one process, on every device of its host; "
                          "start it on one host only")


def search_fingerprint(config: Any) -> dict[str, Any]:
    """The config fields that decide what a finished candidate's scores are: a workdir's results
    are reused only under the same ones."""
    keep = ("dataset", "seed", "holdout", "ipc", "seeds", "epochs", "condensed_set")
    return {**{k: config.get(k) for k in keep}, "recipe": config.recipe.to_dict(), "whole": config.whole.to_dict(),
            "herding": config.herding.to_dict()}


# ----------------------------------------------------------------------------- proxies

@dataclasses.dataclass
class Proxy:
    """A proxy training set: its images and labels (the whole training split for early stopping)."""
    name: str
    images: Any
    labels: Any
    note: str = ""

    @property
    def stored_images(self) -> int:
        return int(len(self.labels))


def _saved_or_built(directory: str, build: Callable[[], SyntheticSet]) -> SyntheticSet:
    if os.path.isdir(directory):
        return load_synthetic(directory)
    synset = build()
    save_synthetic(directory, synset)
    return synset


def check_proxy_set(synset: SyntheticSet, dataset: data_lib.Dataset, path: str) -> None:
    """ConfigError unless the saved set is of `dataset` (name, classes, image shape)."""
    meta = synset.metadata
    if (meta.get("dataset") != dataset.name or int(meta.get("num_classes", -1)) != dataset.num_classes
            or tuple(synset.images.shape[1:]) != tuple(dataset.image_shape)):
        raise ConfigError(f"config.condensed_set {path} is a set of {meta.get('dataset')} with "
                          f"{meta.get('num_classes')} classes of {tuple(synset.images.shape[1:])} images, but the "
                          f"search is on {dataset.name} ({dataset.num_classes} classes of {dataset.image_shape}); "
                          f"condense on {dataset.name} or change config.dataset")


def condensed_proxy(config: Any, train: data_lib.Dataset, holdout: int, workdir: str) -> Proxy:
    """The dcjax proxy: `config.condensed_set` if given, else a set condensed now on the training split."""
    if config.get("condensed_set"):
        path = config.condensed_set
        synset = load_synthetic(path)
        check_proxy_set(synset, train, path)
        saved = synset.metadata.get("config") or {}
        clean = saved.get("holdout") == holdout and saved.get("seed") == config.seed
        note = ("condensed without the validation images" if clean else
                "WARNING: condensed on a training set that includes (some of) the validation images, "
                "which may favour its ranking")
        return Proxy("dcjax", synset.images, synset.labels, f"{path}: {note}")
    import dcjax
    condense_config = config.condense.copy_and_resolve_references()
    with condense_config.unlocked():
        condense_config.dataset, condense_config.data_dir = config.dataset, config.get("data_dir")
        condense_config.data_source, condense_config.seed = config.data_source, config.seed
        condense_config.holdout, condense_config.ipc = holdout, config.ipc
        condense_config.eval.num_models = 0
    synset = dcjax.condense(condense_config, os.path.join(workdir, "condense"))
    return Proxy("dcjax", synset.images, synset.labels,
                 f"condensed by the search on the training split (K={condense_config.num_iterations})")


def build_proxies(config: Any, train: data_lib.Dataset, holdout: int, workdir: str) -> list[Proxy]:
    """The proxies of `config.proxies`, each saved under `<workdir>/proxies/` (reloaded on resume)."""
    key = root_keys(config.seed)["init"]
    proxies = []
    for name in config.proxies:
        if name in ("random", "herding"):
            directory = os.path.join(workdir, "proxies", name, "synthetic")
            h = config.herding
            synset = _saved_or_built(directory, lambda: baselines.build(
                name, train, config.ipc, key, h.model, h.epochs, recipe_from_fields(config.recipe, 1),
                **({"width": h.width} if h.get("width") else {})))
            proxies.append(Proxy(name, synset.images, synset.labels))
        elif name == "dcjax":
            proxies.append(condensed_proxy(config, train, holdout, workdir))
        else:
            proxies.append(Proxy(name, train.x_train, train.y_train, "the whole training split, "
                                 "for the SGD steps of proxy training"))
    return proxies


# ----------------------------------------------------------------------------- training

@dataclasses.dataclass(frozen=True)
class StepsTrainer:
    """Train a fresh network for a fixed number of SGD steps on random batches of a large set,
    at the recipe's lr for `steps_first` steps and at a tenth of it (fresh momentum) for
    `steps_second`, as the recipe's two phases: the early-stopping baseline. Each pass over the
    set is a fresh permutation (hashable: compiled programs are cached by it)."""
    module: Any
    recipe: EvalRecipe
    steps_first: int
    steps_second: int

    def __call__(self, key: jax.Array, images: jax.Array, labels: jax.Array, network: jax.Array) -> Any:
        del network
        init_key, order_key, augment_key = jax.random.split(key, 3)
        variables = self.module.init(init_key, images[:1], train=False)
        n, batch = images.shape[0], self.recipe.batch_size
        steps = self.steps_first + self.steps_second
        batches = pass_order(order_key, n, steps, batch)
        augment = training_augmentation(self.recipe.augmentation)
        for lr, rows, start in ((self.recipe.lr, batches[:self.steps_first], 0),
                                (self.recipe.lr * 0.1, batches[self.steps_first:], self.steps_first)):
            if rows.shape[0] == 0:
                continue
            tx = self.recipe.optimizer(lr)

            def step(carry, indexed, tx=tx):
                variables, opt_state = carry
                number, idx = indexed
                xb = images[idx]
                if augment is not None:
                    xb = augment(jax.random.fold_in(augment_key, number), xb)
                variables, opt_state, _ = sgd_step(self.module.apply, tx, variables, opt_state, xb, labels[idx])
                return (variables, opt_state), None

            (variables, _), _ = jax.lax.scan(step, (variables, tx.init(variables["params"])),
                                             (start + jnp.arange(rows.shape[0]), rows))
        return variables


def proxy_steps(recipe: EvalRecipe, proxy_size: int) -> tuple[int, int]:
    """SGD steps of the recipe's two phases on a proxy of `proxy_size` images: what early stopping
    spends on the whole training split."""
    per_epoch = math.ceil(proxy_size / recipe.batch_size)
    first, second = recipe.phase_epochs()
    return first * per_epoch, second * per_epoch


def candidate_key(config: Any, index: int) -> jax.Array:
    """The key of candidate `index`'s networks: the same on every proxy and for whole-set training."""
    return jax.random.fold_in(root_keys(config.seed)["eval"], index)


class DeviceQueue:
    """Candidates trained concurrently, one per local device, results collected in launch order.

    The seeds of one candidate train together in one compiled program (the evaluation's: vmapped
    on accelerators, mapped on CPU); different candidates go to different devices. Inputs are put
    on each device once.
    """

    def __init__(self, arrays: dict[str, Any], devices: list[Any] | None = None):
        self.devices = list(devices or jax.local_devices())
        self.arrays = {d: jax.device_put(arrays, d) for d in self.devices}
        self.in_flight: list[tuple[Any, jax.Array, float]] = []
        self._next = 0

    def launch(self, tag: Any, program: Callable, args: Callable[[dict[str, Any]], tuple]) -> list:
        """Start `program(*args(arrays on the next device))` on that device; returns the finished
        (tag, accuracies, seconds) collected to keep at most one candidate per device in flight.
        On one device a candidate's seconds are its compilation and run; on several, they may
        include waiting for another device's result to be collected first."""
        finished = self.drain(len(self.devices) - 1)
        device = self.devices[self._next % len(self.devices)]
        self._next += 1
        started = time.time()   # compilation included: it is part of the search's wall time
        inputs = jax.device_put(args(self.arrays[device]), device)
        self.in_flight.append((tag, program(*inputs), started))
        return finished

    def drain(self, keep: int = 0) -> list:
        finished = []
        while len(self.in_flight) > keep:
            tag, out, started = self.in_flight.pop(0)
            finished.append((tag, np.asarray(to_host(wait_until_ready(out))), time.time() - started))
        return finished


# ----------------------------------------------------------------------------- the search

def search(config: Any, workdir: str, visible: bool = True, devices: list[Any] | None = None) -> dict[str, Any]:
    """Run (or resume) the search of `config` in `workdir` on `devices` (default: every local
    device); returns the report written to nas.json."""
    candidates = grid(config.space)
    validate(config, len(candidates))
    dataset = data_lib.load(config.dataset, config.get("data_dir"), config.data_source)
    holdout = config.get("holdout") or data_lib.default_holdout(int(dataset.x_train.shape[0]))
    train, (x_val, y_val) = data_lib.hold_out(dataset, holdout, root_keys(config.seed)["holdout"])
    data_lib.check_batch_size(train, config.ipc, field="ipc")
    log = ResultsLog(os.path.join(workdir, RESULTS_LOG), search_fingerprint(config), ("proxy", "architecture"))
    start = time.time()
    proxies = build_proxies(config, train, holdout, workdir)
    proxy_seconds = time.time() - start
    recipe = recipe_from_fields(config.recipe, config.epochs)
    whole_recipe = recipe_from_fields(config.recipe, config.whole.epochs)
    index = {a.name: i for i, a in enumerate(candidates)}
    arrays = {"val": (x_val, y_val), "test": (dataset.x_test, dataset.y_test),
              "train": (train.x_train, train.y_train)}
    for proxy in proxies:
        if proxy.name != "early_stopping":
            arrays[proxy.name] = (jnp.asarray(proxy.images, jnp.float32), jnp.asarray(proxy.labels, jnp.int32))
    queue = DeviceQueue(arrays, devices)
    small = min((p.stored_images for p in proxies if p.name != "early_stopping"), default=config.ipc * train.num_classes)

    # Candidate by candidate, so that the proxies of one candidate share its compiled program
    # (random, herding and dcjax sets have one shape) and the programs of finished candidates can
    # be dropped (720 candidates' executables would not fit in memory).
    todo = [(p.name, arch) for arch in candidates for p in proxies if not log.done(p.name, arch.name)]
    total_proxy_jobs = len(proxies) * len(candidates)
    display = progress("searching", "candidate", total_proxy_jobs - len(todo), total_proxy_jobs,
                       max(1, total_proxy_jobs // 20), visible)

    def record(finished):
        for (proxy_name, arch), accs, seconds in finished:
            log.append({"proxy": proxy_name, "architecture": arch.name, "fields": dataclasses.asdict(arch),
                        "val": accs[:, 0].tolist(), "test": accs[:, 1].tolist(), "seconds": round(seconds, 2)})
            done = sum(1 for p, _ in log.rows if (p == WHOLE) == (proxy_name == WHOLE))
            display.update(done, f"({proxy_name}: {arch.name})")

    previous = None
    for proxy_name, arch in todo:
        if arch != previous:
            release_programs()
            previous = arch
        module = arch.module(train.num_classes, train.image_shape)
        if proxy_name == "early_stopping":
            trainer = StepsTrainer(module, recipe, *proxy_steps(recipe, small))
            program, source = scoring_program(module, recipe, trainer), "train"
        else:
            program, source = scoring_program(module, recipe), proxy_name
        networks = (jax.random.split(candidate_key(config, index[arch.name]), config.seeds), jnp.arange(config.seeds))
        record(queue.launch((proxy_name, arch), program,
                            lambda a, source=source: (networks, *a[source], (a["val"], a["test"]))))
    record(queue.drain())
    display.close()

    whole_names = whole_set_candidates(config, candidates, log, [p.name for p in proxies])
    whole_todo = [a for a in candidates if a.name in whole_names and not log.done(WHOLE, a.name)]
    display = progress("whole-set training", "candidate", len(whole_names) - len(whole_todo), len(whole_names),
                       1, visible)
    for arch in whole_todo:
        release_programs()
        module = arch.module(train.num_classes, train.image_shape)
        networks = (jax.random.split(candidate_key(config, index[arch.name]), config.whole.seeds),
                    jnp.arange(config.whole.seeds))
        finished = queue.launch((WHOLE, arch), scoring_program(module, whole_recipe),
                                lambda a: (networks, *a["train"], (a["val"], a["test"])))
        record(finished)
    record(queue.drain())
    display.close()

    report = summarise(config, candidates, log.rows, proxies, holdout, proxy_seconds)
    write_report(workdir, report)
    return report


def whole_set_candidates(config: Any, candidates: list[Architecture], log: ResultsLog,
                         proxies: list[str]) -> set[str]:
    """The candidates trained on the whole set: every one (ground_truth 'all') or the union of
    every proxy's top k."""
    if config.ground_truth == "all":
        return {a.name for a in candidates}
    chosen = set()
    for proxy in proxies:
        names = [a.name for a in candidates]
        scores = [float(np.mean(log.rows[proxy, n]["val"])) for n in names]
        chosen.update(ranking.top_k(names, scores, config.top_k))
    return chosen


# ----------------------------------------------------------------------------- the report

def summarise(config: Any, candidates: list[Architecture], rows: dict[tuple[str, str], dict[str, Any]],
              proxies: list[Proxy], holdout: int, proxy_seconds: float) -> dict[str, Any]:
    """Per proxy: the best selected architecture's whole-set test accuracy, Spearman's rho of its
    top k against whole-set validation accuracy (and its spread over the proxy's seeds), over the
    whole grid where whole-set scores exist, the search's wall time and the stored images."""
    names = [a.name for a in candidates]
    whole = {n: rows[WHOLE, n] for n in names if (WHOLE, n) in rows}
    whole_val = {n: float(np.mean(r["val"])) for n, r in whole.items()}
    per_proxy = {}
    for proxy in proxies:
        val = {n: float(np.mean(rows[proxy.name, n]["val"])) for n in names}
        top = ranking.top_k(names, [val[n] for n in names], config.top_k)
        scored = [n for n in top if n in whole_val]
        rho = ranking.spearman([val[n] for n in scored], [whole_val[n] for n in scored]) if scored else None
        per_seed = [ranking.spearman([rows[proxy.name, n]["val"][s] for n in scored], [whole_val[n] for n in scored])
                    for s in range(config.seeds)] if scored else []
        grid_names = [n for n in names if n in whole_val]
        best = max(scored, key=lambda n: whole_val[n]) if scored else None
        per_proxy[proxy.name] = {
            "top_k": top, "spearman_top_k": rho, "spearman_top_k_over_seeds": ranking.mean_and_std(per_seed),
            "spearman_grid": ranking.spearman([val[n] for n in grid_names], [whole_val[n] for n in grid_names]),
            "grid_size_with_whole_scores": len(grid_names),
            "best_selected": best, "best_selected_test": (ranking.mean_and_std(whole[best]["test"]) if best else None),
            "best_on_proxy": top[0], "best_on_proxy_proxy_val": val[top[0]],
            "search_seconds": round(sum(rows[proxy.name, n]["seconds"] for n in names), 1),
            "stored_images": proxy.stored_images, "note": proxy.note,
        }
    best_whole = max(whole_val, key=whole_val.get) if whole_val else None
    return {
        "dataset": config.dataset, "space_size": len(candidates), "holdout": holdout, "ipc": config.ipc,
        "seeds": config.seeds, "epochs": config.epochs, "top_k": config.top_k, "ground_truth": config.ground_truth,
        "whole": {"epochs": config.whole.epochs, "seeds": config.whole.seeds, "trained": len(whole),
                  "best": best_whole, "best_test": ranking.mean_and_std(whole[best_whole]["test"]) if best_whole else None,
                  "seconds": round(sum(r["seconds"] for r in whole.values()), 1)},
        "proxy_build_seconds_this_run": round(proxy_seconds, 1), "proxies": per_proxy,
        "scores": {n: {p.name: rows[p.name, n]["val"] for p in proxies} | ({"whole": whole[n]["val"]} if n in whole else {})
                   for n in names},
    }


def _rho(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(report: dict[str, Any]) -> str:
    lines = [f"# Architecture search on {report['dataset']} (paper Table 4 layout)", "",
             f"{report['space_size']} candidates; proxies of ipc {report['ipc']}; {report['seeds']} networks per "
             f"candidate and proxy, {report['epochs']} epochs; validation split {report['holdout']} training images; "
             f"whole-set training: {report['whole']['epochs']} epochs x {report['whole']['seeds']} networks of "
             f"{report['whole']['trained']} candidates ({report['ground_truth']}).", "",
             "| proxy | best selected: whole-set test % | Spearman top " + str(report["top_k"])
             + " | same, per seed (mean +- std) | Spearman grid (n) | search s | stored images |",
             "|---|---|---|---|---|---|---|"]
    for name, p in report["proxies"].items():
        seeds = p["spearman_top_k_over_seeds"]
        spread = "-" if seeds["mean"] is None else f"{seeds['mean']:.2f} +- {seeds['std']:.2f}"
        lines.append(f"| {name} | {ranking.percent(p['best_selected_test'])} | {_rho(p['spearman_top_k'])} | {spread} | "
                     f"{_rho(p['spearman_grid'])} ({p['grid_size_with_whole_scores']}) | {p['search_seconds']:.0f} | "
                     f"{p['stored_images']} |")
    w = report["whole"]
    trained = "every candidate" if report["ground_truth"] == "all" else "top-k candidates only"
    lines.append(f"| whole set | {ranking.percent(w['best_test'])} | 1.00 | - | - | {w['seconds']:.0f} "
                 f"({trained}) | all |")
    lines += ["", "Best selected: of a proxy's top k, the architecture with the best whole-set validation "
              "accuracy; its whole-set test accuracy over the whole-set networks. Search s: training and "
              "scoring every candidate on the proxy, compilation included; building the proxies (herding's "
              f"feature network, the condensation) took {report['proxy_build_seconds_this_run']:.0f} s more in "
              "the run that wrote this report (0 where they were reloaded from the workdir)."]
    for name, p in report["proxies"].items():
        if p["note"]:
            lines.append(f"* {name}: {p['note']}")
    return "\n".join(lines) + "\n"


def write_report(workdir: str, report: dict[str, Any]) -> None:
    """nas.json, nas.md and nas_scatter.png in `workdir`."""
    write_json(os.path.join(workdir, "nas.json"), report)
    write_text(os.path.join(workdir, "nas.md"), markdown(report))
    scatter(report, os.path.join(workdir, "nas_scatter.png"))


def scatter(report: dict[str, Any], path: str) -> None:
    """Figure F5: proxy vs whole-set validation accuracy of every candidate with both, a panel per proxy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    proxies = list(report["proxies"])
    fig, axes = plt.subplots(1, len(proxies), figsize=(3.2 * len(proxies), 3.2), squeeze=False)
    for ax, name in zip(axes[0], proxies):
        pairs = [(np.mean(s[name]), np.mean(s["whole"])) for s in report["scores"].values() if "whole" in s]
        if pairs:
            x, y = np.asarray(pairs).T * 100
            ax.scatter(x, y, s=12)
        p = report["proxies"][name]
        ax.set_title(f"{name} (top-{report['top_k']} rho {_rho(p['spearman_top_k'])})", fontsize=9)
        ax.set_xlabel("proxy validation acc. %")
        ax.set_ylabel("whole-set validation acc. %")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
