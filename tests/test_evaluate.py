"""Evaluation recipe, vmapped vs sequential networks, the random baseline and PNG grids."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dcjax import baselines, data
from dcjax.condensation import warn_if_degenerate
from dcjax.evaluate import EvalRecipe, _train_and_test_all, evaluate
from dcjax.nets import get_model
from dcjax.support.pictures import image_grid


@pytest.mark.parametrize("epochs,phases", [(300, (152, 149)), (1000, (502, 499)), (4, (4, 1)), (1, (2, 0)), (0, (1, 0))])
def test_learning_rate_phases_follow_the_reference(epochs, phases):
    # reference: range(Epoch+1) epochs, lr x0.1 after epoch Epoch//2 + 1
    assert EvalRecipe(epochs=epochs).phase_epochs() == phases


def separable_problem():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((3, 6, 6, 1)) * 2
    y_train, y_test = np.repeat(np.arange(3), 4), np.repeat(np.arange(3), 20)
    x_train = centres[y_train] + 0.3 * rng.standard_normal((12, 6, 6, 1))
    x_test = centres[y_test] + 0.3 * rng.standard_normal((60, 6, 6, 1))
    return [jnp.asarray(a, jnp.float32) for a in (x_train, y_train, x_test, y_test)]


def test_vmapped_networks_equal_networks_trained_one_after_another():
    x, y, xt, yt = separable_problem()
    module = get_model("MLP", 3, width=16)
    key = jax.random.PRNGKey(0)
    recipe = dict(epochs=20, batch_size=5, test_batch_size=7)
    together = evaluate(module, x, y, xt, yt, key, 3, EvalRecipe(parallel="vmap", **recipe))
    in_turn = evaluate(module, x, y, xt, yt, key, 3, EvalRecipe(parallel="map", **recipe))
    np.testing.assert_allclose(together, in_turn, atol=1 / 60 + 1e-6)
    assert together.mean() > 0.9   # an easy problem is learnt
    compiled = _train_and_test_all(module, EvalRecipe(parallel="map", **recipe), "map", None)
    assert compiled._cache_size() == 1
    again = evaluate(module, x, y, xt, yt, key, 3, EvalRecipe(parallel="map", **recipe))
    np.testing.assert_array_equal(again, in_turn)
    assert compiled._cache_size() == 1   # a second evaluation reuses the compiled program


def test_random_real_baseline_takes_distinct_images_of_each_class():
    dataset = data.load("digits")
    synset = baselines.random_real(dataset, 3, jax.random.PRNGKey(0))
    assert synset.images.shape == (30, 8, 8, 1)
    x, y = np.asarray(dataset.x_train), np.asarray(dataset.y_train)
    for image, label in zip(synset.images, synset.labels):
        assert y[np.where(np.all(x == image, axis=(1, 2, 3)))[0]].tolist()[:1] == [label]
    assert len({img.tobytes() for img in synset.images}) == 30


def test_grid_has_one_row_per_class():
    images = np.zeros((6, 4, 4, 3), np.float32)
    grid = image_grid(images, rows=3, min_size=4, pad=1)
    assert grid.shape == (3 * 5 + 1, 2 * 5 + 1, 3) and grid.dtype == np.uint8


def test_degenerate_depth_is_warned_about():
    messages = []
    warn_if_degenerate(get_model("ConvNet", 10, depth=3), (8, 8, 1), messages.append)
    warn_if_degenerate(get_model("ConvNet", 10, depth=2), (8, 8, 1), messages.append)
    warn_if_degenerate(get_model("ConvNet", 10, depth=3), (28, 28, 1), messages.append)
    assert len(messages) == 1 and "depth 3" in messages[0]


def reference_sgd(module, variables, x, y, phases, lr, momentum=0.9, weight_decay=5e-4, reset=True):
    """The reference's evaluate_synset on a full-batch set, written out: PyTorch SGD (weight decay
    added to the gradient, buffer = momentum * buffer + gradient, first buffer = gradient), one step
    per epoch, and a new optimiser (empty buffer) at lr x0.1 after the first phase."""
    params = variables["params"]

    def loss(p):
        logits = module.apply({"params": p}, x, train=True)
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])

    buffer = None
    for phase_lr, epochs in ((lr, phases[0]), (lr * 0.1, phases[1])):
        if reset:
            buffer = None
        for _ in range(epochs):
            grads = jax.tree_util.tree_map(lambda g, p: g + weight_decay * p, jax.grad(loss)(params), params)
            buffer = grads if buffer is None else jax.tree_util.tree_map(lambda b, g: momentum * b + g, buffer, grads)
            params = jax.tree_util.tree_map(lambda p, b: p - phase_lr * b, params, buffer)
    return params


def test_schedule_and_momentum_reset_match_the_reference_on_a_toy_problem():
    from dcjax.evaluate import train_network
    x, y, _, _ = separable_problem()
    y = y.astype(jnp.int32)
    module = get_model("MLP", 3, width=8)
    recipe = EvalRecipe(epochs=6, lr=0.5)   # phases (5, 2); a large lr makes the momentum visible
    key = jax.random.PRNGKey(1)
    trained = jax.jit(lambda k: train_network(module, recipe, k, x, y))(key)["params"]
    initial = module.init(jax.random.split(key, 3)[0], x[:1], train=False)
    expected = reference_sgd(module, initial, x, y, recipe.phase_epochs(), recipe.lr)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), trained, expected)
    # The test can tell: keeping the momentum buffer across the lr drop gives other weights.
    kept = reference_sgd(module, initial, x, y, recipe.phase_epochs(), recipe.lr, reset=False)
    differences = jax.tree_util.tree_map(lambda a, b: float(jnp.max(jnp.abs(a - b))), trained, kept)
    assert max(jax.tree_util.tree_leaves(differences)) > 1e-3


def test_the_evaluation_model_takes_the_config_net_fields_its_family_has():
    from dcjax.evaluate import evaluation_model
    config = common.get_config()
    config.net.width, config.net.depth = 16, 2
    condensing = get_model("ConvNetBN", 10, (8, 8, 1), width=16, depth=2)
    assert evaluation_model(config, condensing, 10, (8, 8, 1)).norm == "instance"   # eval mode 'S'
    config.eval.model = "ConvNet"
    model = evaluation_model(config, condensing, 10, (8, 8, 1))
    assert (model.width, model.depth, model.norm) == (16, 2, "instance")
    config.eval.model = "MLP"                     # width/depth are ConvNet fields: not passed to an MLP
    assert type(evaluation_model(config, condensing, 10, (8, 8, 1))).__name__ == "MLP"
