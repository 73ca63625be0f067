"""Sharding on 8 simulated CPU devices; run by tests/test_sharding.py in a child process with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (the device count is fixed when JAX starts, so
these cannot share the single-device test process). Not named test_*.py for that reason.
"""
import os

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import dcjax
from configs import digits
from dcjax import condensation, configuration, data, sharding
from dcjax.support.checkpoints import RunCheckpoints
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe, evaluate
from dcjax.matching import matching_loss_and_grad
from dcjax.nets import get_model


def test_eight_devices_are_simulated():
    assert jax.device_count() == 8, "run with XLA_FLAGS=--xla_force_host_platform_device_count=8"


@pytest.fixture(scope="module")
def dataset():
    return data.load("digits")


@pytest.mark.parametrize("mesh_shape,num_classes", [
    ((8, 1), 10),   # 10 classes over 8 devices: 6 padding classes
    ((2, 4), 10),   # real batches split 4 ways as well
    (None, 3),      # fewer classes than devices: auto mesh (2, 4), one padding class
])
def test_sharded_matching_equals_single_device(dataset, mesh_shape, num_classes):
    module = get_model("ConvNet", 10, width=16, depth=2)
    syn = jax.random.normal(jax.random.PRNGKey(0), (num_classes, 2, 8, 8, 1))
    real = data.sample_real(jax.random.PRNGKey(1), dataset, 8)[:num_classes]
    params = module.init(jax.random.PRNGKey(2), syn[0])["params"]
    losses, grads = jax.jit(lambda s, r: matching_loss_and_grad(module.apply, params, {}, s, r, "ours", "unroll"))(
        syn, real)

    layout = sharding.ClassLayout(sharding.make_mesh(mesh_shape, num_classes), num_classes)
    if mesh_shape is None:
        assert dict(layout.mesh.shape) == {"classes": 2, "batch": 4}
    for mode in ("unroll", "vmap", "map"):
        s_losses, s_grads = jax.jit(lambda s, r: layout.matching_loss_and_grad(
            module.apply, params, {}, s, r, "ours", mode, None))(layout.put_by_class(syn), real)
        assert s_grads.sharding.spec == P("classes")
        assert len({shard.device for shard in s_grads.addressable_shards}) == 8
        np.testing.assert_allclose(np.asarray(s_losses)[:num_classes], losses, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(s_grads)[:num_classes], grads, rtol=1e-5, atol=1e-6)
        assert not np.asarray(s_grads)[num_classes:].any(), "padding classes must get zero gradients"


def tiny_config():
    c = digits.get_config()
    c.ipc, c.num_iterations, c.net.width, c.batch_real = 2, 3, 16, 16
    c.checkpoint_every = 2
    c.eval.num_models = 0
    c.class_parallel = "unroll"
    return c


def test_condensation_on_8_devices_equals_1_device(tmp_path, dataset):
    config = tiny_config()
    eight = dcjax.condense(config, str(tmp_path))

    module = configuration.model_from_config(config, 10, dataset.image_shape)
    one_device = sharding.class_layout(config, 10, devices=jax.devices()[:1])
    # Placed as condense places it, so every iteration reuses the first one's compilation.
    state = condensation.place_state(condensation.init_state(config, dataset), one_device)
    step = condensation.make_outer_iteration(module, config, one_device)   # the plain single-device program
    for _ in range(config.num_iterations):
        state, _ = step(state, dataset)
    assert len(state.images.sharding.device_set) == 1
    np.testing.assert_allclose(eight.images, np.asarray(state.images).reshape(eight.images.shape), atol=1e-5)

    # Checkpoints hold the unpadded (10, ...) state, so a run resumes on any device count.
    checkpoints = RunCheckpoints(str(tmp_path))
    restored, _ = checkpoints.restore(checkpoints.latest_step(), None)
    checkpoints.close()
    assert restored["images"].shape == (10, 2, 8, 8, 1)


def test_state_lives_sharded_by_class(dataset):
    config = tiny_config()
    layout = sharding.class_layout(config, 10)
    assert layout.padded_classes == 16
    module = configuration.model_from_config(config, 10, dataset.image_shape)
    state = condensation.place_state(condensation.init_state(config, dataset), layout)
    state, loss = condensation.make_outer_iteration(module, config, layout)(state, layout.put_replicated(dataset))
    for array in (state.images, state.opt_state[0].trace):
        assert array.shape[0] == 16 and array.sharding.spec == P("classes")
        assert {s.data.shape[0] for s in array.addressable_shards} == {2}
    assert np.isfinite(float(loss))


def test_batch_real_must_split_over_the_batch_axis(tmp_path):
    config = tiny_config()
    config.mesh.shape = (2, 4)
    config.batch_real = 6
    with pytest.raises(ConfigError, match="batch_real=6"):
        dcjax.condense(config, str(tmp_path))
    assert not os.listdir(tmp_path)


def test_mesh_shape_must_use_every_device():
    with pytest.raises(ConfigError, match="available devices"):
        sharding.make_mesh((2, 2), 10)


def test_sharded_evaluation_equals_one_device(dataset):
    module = get_model("MLP", 10, width=32)
    images = np.asarray(data.sample_real(jax.random.PRNGKey(3), dataset, 2)).reshape(20, 8, 8, 1)
    labels = np.repeat(np.arange(10), 2)
    recipe = EvalRecipe(epochs=3, parallel="map")
    args = (module, images, labels, dataset.x_test, dataset.y_test, jax.random.PRNGKey(4), 5, recipe)
    single = evaluate(*args)
    sharded = evaluate(*args, mesh=sharding.make_mesh((8, 1), 10))
    assert sharded.shape == (5,)
    np.testing.assert_allclose(sharded, single, atol=1e-6)
    assert len(set(np.round(single, 6))) > 1   # five different networks, not one repeated


def test_architecture_search_spreads_candidates_over_devices_with_one_device_scores(tmp_path):
    from test_nas import toy_config
    from dcjax.apps import nas
    config = toy_config(tmp_path, proxies=("random", "early_stopping"))
    config.space.norm, config.top_k = ("none",), 2   # 2 candidates: 2 x 2 proxy trainings, 2 whole-set ones
    config.ground_truth = "all"
    launched_on = []
    real_launch = nas.DeviceQueue.launch

    def recording_launch(self, tag, program, args):
        launched_on.append(self.devices[self._next % len(self.devices)])
        return real_launch(self, tag, program, args)

    nas.DeviceQueue.launch = recording_launch
    try:
        spread = nas.search(config, str(tmp_path / "eight"), visible=False)
    finally:
        nas.DeviceQueue.launch = real_launch
    assert len(launched_on) == len(set(launched_on)) == 6   # 6 trainings went to 6 devices
    one = nas.search(config, str(tmp_path / "one"), visible=False, devices=jax.devices()[:1])
    for name, scores in one["scores"].items():
        for proxy, values in scores.items():
            np.testing.assert_allclose(spread["scores"][name][proxy], values, atol=1e-6)
