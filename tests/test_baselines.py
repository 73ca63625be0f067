"""Coreset baselines (paper Table 1): herding, k-center, forgetting events and random, saved as sets."""
import json
import os
import subprocess
import sys
import tracemalloc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcjax import baselines, data
from dcjax.synthetic_set import load_synthetic
from dcjax.errors import ConfigError, DataError
from dcjax.evaluate import EvalRecipe
from dcjax.nets import get_model

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# Class 0: five points on a line, mean (3.2, 0).
#   herding: step 1 takes the point closest to the mean, x=3 (index 3); step 2 wants (3 + x)/2 = 3.2,
#   i.e. x = 3.4: x=2 (index 2) is nearest; step 3 wants (5 + x)/3 = 3.2, x = 4.6: x=1 (|3.6|) beats
#   x=0 (4.6) and x=10 (5.4) -> [3, 2, 1].
#   k-center: start at the point closest to the mean, index 3; farthest from it is x=10 (index 4,
#   distance 7); then the distances to {3, 10} are 3, 2, 1 for x=0, 1, 2 -> x=0 (index 0) -> [3, 4, 0].
LINE = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [10, 0]], float)
# Class 1: A(0,-1) B(4,0) C(0,2.5) D(5,3) E(2,1), mean (2.2, 1.1); squared distances below.
#   herding: step 1: E (0.05 from the mean). Step 2 targets 2*mu - E = (2.4, 1.2): A 10.6, B 4.0, C 7.45,
#   D 10.0 -> B. Step 3 targets 3*mu - (E+B) = (0.6, 2.3): A 11.25, C 0.4, D 19.85 -> C. Step 4 targets
#   4*mu - (E+B+C) = (2.8, 0.9): A 11.45, D 9.25 -> D; then A -> [4, 1, 2, 3, 0].
#   k-center: start at E; from E: A 8, B 5, C 6.25, D 13 -> D. Nearest centre among {E, D}: A 8, B 5,
#   C 6.25 -> A. Among {E, D, A}: B 5, C 6.25 -> C; then B -> [4, 3, 0, 2, 1].
SQUARE = np.array([[0, -1], [4, 0], [0, 2.5], [5, 3], [2, 1]], float)


def test_herding_follows_the_class_mean_by_hand():
    np.testing.assert_array_equal(baselines.herding_order(LINE, 3), [3, 2, 1])
    np.testing.assert_array_equal(baselines.herding_order(SQUARE, 5), [4, 1, 2, 3, 0])


def test_k_center_takes_farthest_points_by_hand():
    np.testing.assert_array_equal(baselines.k_center_order(LINE, 3), [3, 4, 0])
    np.testing.assert_array_equal(baselines.k_center_order(SQUARE, 5), [4, 3, 0, 2, 1])
    # duplicates: every row is taken once even when all remaining distances are 0
    assert sorted(baselines.k_center_order(np.ones((4, 2)), 4).tolist()) == [0, 1, 2, 3]


def test_selection_without_quadratic_memory():
    rows = np.random.default_rng(0).standard_normal((20000, 32)).astype(np.float32)
    tracemalloc.start()
    for order_fn in (baselines.herding_order, baselines.k_center_order):
        assert len(set(order_fn(rows, 5).tolist())) == 5
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40e6   # one float64 copy is 5 MB; a 20000^2 distance matrix would be 3.2 GB


def toy_dataset():
    """Ten 2x2 images, classes interleaved: class 0 at even rows, class 1 at odd rows."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 2, 2, 1), dtype=np.uint8)
    y = np.tile([0, 1], 5)
    features = np.empty((10, 2))
    features[0::2], features[1::2] = LINE, SQUARE
    return data.from_arrays("toy", x, y, x[:2], y[:2]), features


@pytest.mark.parametrize("select,expected", [(baselines.herding, [[6, 4, 2], [9, 3, 5]]),
                                             (baselines.k_center, [[6, 8, 0], [9, 7, 1]])])
def test_selection_per_class_returns_training_images(select, expected):
    dataset, features = toy_dataset()
    synset = select(dataset, 3, features, {"network": "hand-made"})
    # class-c position p is x_train row 2p + c
    assert synset.metadata["selected_indices"] == sum(expected, [])
    np.testing.assert_array_equal(synset.images, np.asarray(dataset.x_train)[sum(expected, [])])
    np.testing.assert_array_equal(synset.labels, [0, 0, 0, 1, 1, 1])
    assert synset.metadata["selection"]["network"] == "hand-made" and synset.metadata["ipc"] == 3
    with pytest.raises(DataError, match="ipc"):
        select(dataset, 6, features)


def test_forgetting_events_by_hand():
    correct = np.array([[1, 0, 1, 0, 1],    # epochs x examples
                        [0, 0, 1, 1, 1],
                        [1, 0, 1, 1, 0],
                        [0, 0, 1, 0, 0],
                        [1, 0, 1, 0, 1]], bool)
    # example 0 forgets at epochs 1 and 3; 1 is never learnt; 2 never forgets; 3 forgets at epoch 3;
    # 4 forgets at epoch 2
    np.testing.assert_array_equal(baselines.count_forgetting_events(correct), [2, 0, 0, 1, 1])
    np.testing.assert_array_equal(baselines.forgetting_scores(correct), [2, 0, 0, 1, 1])
    # Toneva's ordering: never-learnt examples rank above any count (5 epochs: at most 2 events)
    np.testing.assert_array_equal(baselines.forgetting_scores(correct, "never_learnt_first"), [2, 5, 0, 1, 1])
    with pytest.raises(ConfigError, match="unknown forgetting rule 'toneva'; choose one of events, never_learnt_first"):
        baselines.forgetting_scores(correct, "toneva")


def test_most_forgotten_per_class_by_hand():
    scores = np.array([0, 3, 2, 1, 2, 1, 7])
    members = [np.array([0, 2, 4, 6]), np.array([1, 3, 5])]
    # class 0: 6 (7), then 2 and 4 tie at 2 -> the lower tie-break value first
    np.testing.assert_array_equal(
        baselines.most_forgotten(scores, members, 2, tie_break=np.arange(7)), [[6, 2], [1, 3]])
    np.testing.assert_array_equal(
        baselines.most_forgotten(scores, members, 2, tie_break=-np.arange(7)), [[6, 4], [1, 5]])


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_recorded_correctness_is_in_example_order(digits):
    # with lr 0 the network never changes, so every epoch records its fixed predictions, whatever the
    # shuffling (230 examples in batches of 100: two full batches and a smaller last one)
    x, y = digits.x_train[:230], digits.y_train[:230]
    module = get_model("MLP", 10, width=16)
    variables = module.init(jax.random.PRNGKey(0), x[:1])
    tx = EvalRecipe(weight_decay=0.0).optimizer(0.0)
    _, correct = baselines.record_correctness(module, variables, tx, x, y, jax.random.PRNGKey(1), 2, 100)
    expected = jnp.argmax(module.apply(variables, x), -1) == y
    assert correct.shape == (2, 230) and 0 < expected.sum() < 230
    np.testing.assert_array_equal(correct, np.stack([expected, expected]))


def test_embedding_in_fixed_batches_equals_one_pass(digits):
    # the network of the end-to-end tests below, which then find this program compiled
    module = get_model("ConvNet", 10, width=16, depth=2)
    variables = module.init(jax.random.PRNGKey(0), digits.x_train[:1])
    features = baselines.embed_dataset(module, variables, digits.x_train)   # 2 x 500 + 347 images
    one_pass = jax.jit(lambda v, x: module.apply(v, x, method="embed"))(variables, digits.x_train)
    assert features.shape == (1347, 16 * 2 * 2)
    np.testing.assert_allclose(features, one_pass, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["random", "herding", "k_center", "forgetting"])
def test_every_method_end_to_end_on_digits(digits, method):
    settings = dict(model="ConvNet", epochs=1, width=16, depth=2)
    synset = baselines.build(method, digits, 2, jax.random.PRNGKey(0), **settings)
    assert synset.images.shape == (20, 8, 8, 1) and np.isfinite(synset.images).all()
    np.testing.assert_array_equal(synset.labels, np.repeat(np.arange(10), 2))
    x, y = np.asarray(digits.x_train), np.asarray(digits.y_train)
    indices = synset.metadata["selected_indices"]
    assert len(set(indices)) == 20
    np.testing.assert_array_equal(y[indices], synset.labels)
    for image, label in zip(synset.images, synset.labels):   # each image is a training image of its class
        assert label in y[np.all(x == image, axis=(1, 2, 3))]
    assert synset.metadata["method"] == baselines.METHODS[method]
    json.dumps(synset.metadata)   # storable as the set's JSON metadata
    again = baselines.build(method, digits, 2, jax.random.PRNGKey(0), **settings)
    assert again.metadata["selected_indices"] == indices


def test_forgetting_sets_for_several_ipc_equal_separate_runs(digits):
    settings = dict(model="ConvNet", epochs=2, width=16, depth=2)
    key = jax.random.PRNGKey(3)
    both = baselines.forgetting_sets(digits, (1, 3), key, **settings)
    for ipc in (1, 3):
        alone = baselines.forgetting(digits, ipc, key, **settings)
        assert both[ipc].metadata["selected_indices"] == alone.metadata["selected_indices"]
        np.testing.assert_array_equal(both[ipc].images, alone.images)
    by_rule = baselines.forgetting_sets(digits, (3,), key, rules=baselines.FORGETTING_RULES, **settings)
    assert by_rule["events", 3].metadata == both[3].metadata
    toneva = baselines.forgetting(digits, 3, key, rule="never_learnt_first", **settings)
    assert by_rule["never_learnt_first", 3].metadata == toneva.metadata
    # the most forgotten example of each class leads both sets
    np.testing.assert_array_equal(np.asarray(both[3].metadata["selected_indices"]).reshape(10, 3)[:, 0],
                                  both[1].metadata["selected_indices"])


def run_cli(*args):
    # share this session's compilation cache: the CLI then reuses the programs the tests compiled
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=jax.config.jax_compilation_cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0.5")
    return subprocess.run([sys.executable, os.path.join(REPO, "bin", "baselines.py"), *args],
                          capture_output=True, text=True, timeout=300, env=env)


def test_cli_saves_a_set_and_refuses_another_method_in_the_same_out(tmp_path):
    out = str(tmp_path / "herding_digits")
    common = ["--dataset=digits", "--ipc=2", f"--out={out}"]
    done = run_cli(*common, "--method=herding", "--feature_width=16", "--feature_depth=2", "--feature_epochs=1")
    assert done.returncode == 0, done.stderr
    synset = load_synthetic(out)
    assert synset.images.shape == (20, 8, 8, 1) and synset.metadata["method"] == "herding"
    record = json.load(open(os.path.join(out, "baseline.json")))
    assert record["status"] == "done" and record["seconds"]["total"] > 0 and record["epochs"] == 1
    refused = run_cli(*common, "--method=k_center")
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and refused.stderr.startswith("error: --out")
    assert "already holds a 'herding' baseline set" in refused.stderr and "Traceback" not in refused.stderr
    assert load_synthetic(out).metadata["method"] == "herding"
