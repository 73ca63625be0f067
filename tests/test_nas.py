"""Architecture search (dcjax.apps.nas): the search space, the rank statistics, the validation split,
a tiny end-to-end search on a toy dataset, its resumption, and bad input through bin/nas.py."""
import itertools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from configs import common
from dcjax import data
from dcjax.apps import nas, ranking
from dcjax.apps.search_space import FIELDS, PAPER_SPACE, Architecture, grid
from dcjax.errors import ConfigError
from dcjax.synthetic_set import load_synthetic

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
NAS = [sys.executable, os.path.join(REPO, "bin", "nas.py")]
TOY_CLASSES, TOY_PER_CLASS = 4, 40


# ----------------------------------------------------------------------------- the search space

def test_paper_grid_has_720_distinct_convnets_in_a_fixed_order():
    candidates = grid()
    assert len(candidates) == 720 == len({a.name for a in candidates}) == len(set(candidates))
    assert candidates == grid(PAPER_SPACE)
    for field in FIELDS:
        assert {getattr(a, field) for a in candidates} == set(PAPER_SPACE[field])
    assert candidates[0] == Architecture(32, 1, "none", "sigmoid", "none")


def test_every_member_builds_and_traces_forward():
    # All 720 are traced abstractly (shapes only) on the paper's CIFAR-10 shape; 28x28 inputs flow
    # through as 32x32 maps (first_layer_padding), and `test_one_of_each_value_runs_forward` runs real
    # networks of both shapes.
    shape = (32, 32, 3)
    x = jax.ShapeDtypeStruct((2,) + shape, jnp.float32)
    for arch in grid():
        module = arch.module(10, shape)
        out, _ = jax.eval_shape(lambda x: module.init_with_output(jax.random.PRNGKey(0), x, train=False), x)
        assert out.shape == (2, 10), arch.name


@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1)])
def test_one_of_each_value_runs_forward(shape):
    # Every norm x pooling at the deepest depth (where maps are smallest; the pairs that decide the
    # shapes), the activations taken in turn along them, and every width and depth once (paired along
    # the diagonal): each value of each field runs for real.
    activations = itertools.cycle(PAPER_SPACE["activation"])
    small = [Architecture(8, 4, norm, next(activations), pooling)
             for norm in PAPER_SPACE["norm"] for pooling in PAPER_SPACE["pooling"]]
    assert {a.activation for a in small} == set(PAPER_SPACE["activation"])
    sizes = [Architecture(w, d, "instance", "relu", "avg") for w, d in zip(PAPER_SPACE["width"], PAPER_SPACE["depth"])]
    x = jax.random.normal(jax.random.PRNGKey(1), (2,) + shape)
    for arch in small + sizes:
        module = arch.module(10, shape)
        logits = module.apply(module.init(jax.random.PRNGKey(0), x, train=False), x, train=False)
        assert logits.shape == (2, 10) and bool(jnp.isfinite(logits).all()), arch.name


def test_sub_grids_and_bad_values():
    assert len(grid({"width": [32], "depth": [3], "norm": ["instance", "batch"], "activation": ["relu"],
                     "pooling": ["avg"]})) == 2
    base = {f: list(v[:1]) for f, v in PAPER_SPACE.items()}
    with pytest.raises(ConfigError, match=r"config.space.norm value 'weird' is not one of"):
        grid({**base, "norm": ["weird"]})
    with pytest.raises(ConfigError, match=r"config.space.depth values must be 1..4, got 7"):
        grid({**base, "depth": [7]})
    with pytest.raises(ConfigError, match=r"unknown: \['kernel'\]"):
        grid({**base, "kernel": [3]})
    with pytest.raises(ConfigError, match=r"must list distinct values"):
        grid({**base, "width": [32, 32]})


# ----------------------------------------------------------------------------- rank statistics

@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")
def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 3, 10, 57):
        for _ in range(20):
            a = rng.integers(0, 5, n).astype(float)   # many ties
            b = rng.normal(size=n).round(1)
            expected = stats.spearmanr(a, b).statistic
            got = ranking.spearman(a, b)
            if np.isnan(expected):
                assert got is None
            else:
                assert got == pytest.approx(expected, abs=1e-12)
    assert ranking.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ranking.spearman([1, 1, 1], [1, 2, 3]) is None
    assert ranking.top_k(["a", "b", "c", "d"], [0.1, 0.9, 0.5, 0.9], 3) == ["b", "d", "c"]


# ----------------------------------------------------------------------------- the validation split

def _toy_arrays(seed=0):
    """4 classes of 8x8 grey images: a class-specific pattern plus noise (learnable, all distinct)."""
    rng = np.random.default_rng(seed)
    patterns = rng.uniform(0, 255, (TOY_CLASSES, 8, 8, 1))

    def split(per_class):
        y = np.repeat(np.arange(TOY_CLASSES), per_class)
        x = np.clip(patterns[y] * 0.6 + rng.uniform(0, 100, (len(y), 8, 8, 1)), 0, 255).astype(np.uint8)
        return x, y

    (x_train, y_train), (x_test, y_test) = split(TOY_PER_CLASS), split(10)
    return x_train, y_train, x_test, y_test


def test_hold_out_is_disjoint_complete_and_reproducible():
    dataset = data.from_arrays("toy", *_toy_arrays())
    key = jax.random.PRNGKey(3)
    rest, (x_val, y_val) = data.hold_out(dataset, 16, key)
    again, (x_val2, _) = data.hold_out(dataset, 16, key)
    np.testing.assert_array_equal(x_val, x_val2)
    np.testing.assert_array_equal(rest.x_train, again.x_train)
    _, (x_other, _) = data.hold_out(dataset, 16, jax.random.PRNGKey(4))
    assert not np.array_equal(x_val, x_other)
    rows = lambda x: {np.asarray(r).tobytes() for r in x}
    assert rows(x_val).isdisjoint(rows(rest.x_train))
    assert rows(x_val) | rows(rest.x_train) == rows(dataset.x_train)
    assert rest.x_train.shape[0] == dataset.x_train.shape[0] - 16 and int(rest.class_counts.sum()) == 144
    for c in range(TOY_CLASSES):   # the class index points at that class's images of the rest
        members = np.asarray(rest.class_index[c, :int(rest.class_counts[c])])
        assert (np.asarray(rest.y_train)[members] == c).all()
    np.testing.assert_array_equal(np.sort(np.asarray(y_val)), np.sort(np.asarray(dataset.y_train)[
        np.isin(np.arange(160), np.flatnonzero([r.tobytes() in rows(x_val) for r in np.asarray(dataset.x_train)]))]))
    with pytest.raises(ConfigError, match="cannot hold out 160"):
        data.hold_out(dataset, 160, key)
    assert data.default_holdout(50000) == 5000 and data.default_holdout(160) == 16


# ----------------------------------------------------------------------------- a tiny search

def toy_config(tmp_path, proxies=("random", "herding", "dcjax", "early_stopping")):
    """A 4-candidate search on the toy set, small enough for the test suite."""
    path = tmp_path / "toy.npz"
    if not path.exists():
        x_train, y_train, x_test, y_test = _toy_arrays()
        np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    c = common.nas_setting("toy")
    c.data_dir = str(path)
    c.space.width, c.space.depth, c.space.norm = (4, 8), (1,), ("none", "instance")
    c.space.activation, c.space.pooling = ("relu",), ("avg",)
    c.proxies = proxies
    c.ipc, c.seeds, c.epochs, c.top_k = 2, 2, 3, 3
    c.whole.epochs, c.whole.seeds = 1, 2
    c.herding.width, c.herding.epochs = 4, 1
    c.recipe.batch_size = 16
    c.condense.num_iterations, c.condense.batch_real, c.condense.outer_loop, c.condense.inner_loop = 2, 4, 1, 1
    c.condense.net.width, c.condense.net.depth, c.condense.batch_train = 4, 1, 8
    c.condense.checkpoint_every, c.condense.log_every = 1, 1
    return c


def _rows(workdir):
    with open(os.path.join(workdir, nas.RESULTS_LOG)) as f:
        return [json.loads(line) for line in f.read().splitlines()[1:]]


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nas")
    config, workdir = toy_config(tmp), str(tmp / "search")
    return config, workdir, nas.search(config, workdir, visible=False)


def test_search_scores_every_candidate_on_every_proxy_and_reports(finished_search):
    config, workdir, report = finished_search
    rows = _rows(workdir)
    pairs = [(r["proxy"], r["architecture"]) for r in rows]
    tops = set().union(*(p["top_k"] for p in report["proxies"].values()))
    assert len(pairs) == len(set(pairs)) == 4 * 4 + len(tops)   # 4 proxies x 4 candidates, + every top 3 on the whole set
    assert {a for p, a in pairs if p == nas.WHOLE} == tops
    for r in rows:
        assert len(r["val"]) == len(r["test"]) == 2 and all(0 <= a <= 1 for a in r["val"] + r["test"])
    assert set(report["proxies"]) == set(config.proxies)
    for name, p in report["proxies"].items():
        assert len(p["top_k"]) == 3 and p["best_selected"] in p["top_k"]
        assert p["spearman_top_k"] is None or -1 <= p["spearman_top_k"] <= 1
        assert p["stored_images"] == (144 if name == "early_stopping" else 2 * TOY_CLASSES)
    assert report["holdout"] == 16 and report["whole"]["trained"] == len(tops)
    # the problem is learnable: the whole-set networks beat chance on the test split
    assert report["whole"]["best_test"]["mean"] > 1 / TOY_CLASSES + 0.2
    for name in ("nas.json", "nas.md", "nas_scatter.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0
    assert "| dcjax |" in open(os.path.join(workdir, "nas.md")).read()


def test_proxies_never_contain_validation_images(finished_search):
    config, workdir, _ = finished_search
    dataset = data.load("toy", config.data_dir)
    _, (x_val, _) = data.hold_out(dataset, 16, nas.root_keys(config.seed)["holdout"])
    val_rows = {np.asarray(r).tobytes() for r in x_val}
    for name in ("random", "herding"):
        synset = load_synthetic(os.path.join(workdir, "proxies", name, "synthetic"))
        assert synset.images.shape == (8, 8, 8, 1)
        assert not val_rows & {np.asarray(r, np.float32).tobytes() for r in synset.images}
    condensed = load_synthetic(os.path.join(workdir, "condense", "synthetic"))
    assert condensed.metadata["config"]["holdout"] == 16   # condensed on the training split only


def test_same_seed_same_scores_and_a_resumed_search_trains_only_what_is_missing(finished_search, tmp_path,
                                                                                monkeypatch):
    config, workdir, report = finished_search
    config = toy_config(tmp_path, proxies=("random", "early_stopping"))
    config.ground_truth = "all"
    stopped = str(tmp_path / "stopped")
    launches = []
    real_launch = nas.DeviceQueue.launch

    def launch_then_stop(self, tag, program, args):
        launches.append(tag)
        if len(launches) == 5:
            raise KeyboardInterrupt   # the search is killed while its 5th candidate trains
        return real_launch(self, tag, program, args)

    monkeypatch.setattr(nas.DeviceQueue, "launch", launch_then_stop)
    with pytest.raises(KeyboardInterrupt):
        nas.search(config, stopped, visible=False)
    before = _rows(stopped)
    assert 1 <= len(before) <= 4   # the candidates finished before the kill are on disk
    with open(os.path.join(stopped, nas.RESULTS_LOG), "a") as f:
        f.write('{"proxy": "random", "architec')   # a line cut short by the kill
    launches.clear()
    monkeypatch.setattr(nas.DeviceQueue, "launch", lambda self, *a: (launches.append(a[0]), real_launch(self, *a))[1])
    resumed = nas.search(config, stopped, visible=False)
    finished_before = {(r["proxy"], r["architecture"]) for r in before}
    trained_now = {(proxy, arch.name) for proxy, arch in launches}
    assert not finished_before & trained_now
    assert len(trained_now) == 2 * 4 + 4 - len(finished_before)   # the rest, whole set included
    after = {(r["proxy"], r["architecture"]): r for r in _rows(stopped)}
    for r in before:
        assert after[r["proxy"], r["architecture"]] == r
    # The random proxy's scores equal those of the full search (same seed, same candidate keys).
    for name, scores in resumed["scores"].items():
        np.testing.assert_allclose(scores["random"], report["scores"][name]["random"], atol=1e-6)
    assert resumed["proxies"]["random"]["spearman_grid"] is not None


def test_a_search_with_other_settings_refuses_the_workdir(finished_search, tmp_path):
    config, workdir, _ = finished_search
    other = toy_config(tmp_path)
    other.seeds = 3
    with pytest.raises(ConfigError, match="holds a run with other settings"):
        nas.search(other, workdir, visible=False)


# ----------------------------------------------------------------------------- bad input

def _config_file(tmp_path, proxies):
    """A config file for bin/nas.py that builds `toy_config`."""
    path = tmp_path / "nas_toy.py"
    path.write_text(f"import sys\nsys.path.insert(0, {os.path.join(REPO, 'tests')!r})\n"
                    f"import pathlib\nfrom test_nas import toy_config\n\n"
                    f"def get_config():\n    return toy_config(pathlib.Path({str(tmp_path)!r}), {tuple(proxies)!r})\n")
    return str(path)


@pytest.mark.parametrize("flags,message", [
    (["--config.space.norm=('instance','weird')"], "error: config.space.norm value 'weird' is not one of"),
    (["--config.top_k=5"], "error: config.top_k=5 is larger than the search space's 4 candidates"),
    (["--config.condensed_set={digits_set}"], "error: config.condensed_set"),
], ids=["unknown-grid-value", "top-k-above-grid", "set-of-another-dataset"])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, flags, message):
    digits_set = tmp_path / "digits_set"
    if "{digits_set}" in flags[0]:
        from dcjax import baselines
        from dcjax.synthetic_set import save_synthetic
        save_synthetic(str(digits_set), baselines.random_real(data.load("digits"), 2, jax.random.PRNGKey(0)))
    flags = [f.format(digits_set=digits_set) for f in flags]
    result = subprocess.run(NAS + [f"--config={_config_file(tmp_path, ('dcjax', 'random'))}",
                                   f"--workdir={tmp_path / 'w'}"] + flags,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr
