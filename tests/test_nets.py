"""Networks: reference parameter counts, every ConvNet variant builds, PyTorch-default init."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcjax.errors import ConfigError
from dcjax.nets import get_model, instance_norm_twin, uses_batch_norm


def num_params(module, shape):
    variables = module.init(jax.random.PRNGKey(0), jnp.zeros((1,) + shape))
    return sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))


# Counts from the reference's PyTorch definitions (networks.py), computed by hand:
# ConvNet-128-3 instance norm: conv(c*9*128 + 128) + 3 norms (2*128 each) + 2 convs (128*9*128 + 128)
# + dense (128*4*4*10 + 10); MLP: (in*128 + 128) + (128*128 + 128) + (128*10 + 10).
@pytest.mark.parametrize("name,shape,count", [
    ("ConvNet", (28, 28, 1), 1 * 9 * 128 + 128 + 3 * 256 + 2 * (128 * 9 * 128 + 128) + 2048 * 10 + 10),
    ("ConvNet", (32, 32, 3), 3 * 9 * 128 + 128 + 3 * 256 + 2 * (128 * 9 * 128 + 128) + 2048 * 10 + 10),
    ("MLP", (28, 28, 1), 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10),
    ("MLP", (32, 32, 3), 3072 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10),
    ("ConvNetNN", (32, 32, 3), 3 * 9 * 128 + 128 + 2 * (128 * 9 * 128 + 128) + 2048 * 10 + 10),
    ("ConvNetD1", (32, 32, 3), 3 * 9 * 128 + 128 + 256 + 128 * 16 * 16 * 10 + 10),
    ("ConvNetW32", (28, 28, 1), 9 * 32 + 32 + 3 * 64 + 2 * (32 * 9 * 32 + 32) + 32 * 16 * 10 + 10),
])
def test_reference_parameter_counts(name, shape, count):
    assert num_params(get_model(name, 10), shape) == count


@pytest.mark.parametrize("width,depth,norm,act,pool", list(itertools.product(
    [32, 64, 128, 256], [1, 2, 3, 4], ["none", "batch", "layer", "instance", "group"],
    ["sigmoid", "relu", "leaky_relu", "swish"], ["none", "max", "avg"]))[::37])
def test_nas_space_convnets_build_and_run(width, depth, norm, act, pool):
    module = get_model("ConvNet", 10, width=width, depth=depth, norm=norm, activation=act, pooling=pool)
    x = jnp.ones((2, 32, 32, 3))
    variables = module.init(jax.random.PRNGKey(0), x)
    assert module.apply(variables, x).shape == (2, 10)


def test_reference_name_suffixes():
    assert get_model("ConvNetBN", 10).norm == "batch"
    assert get_model("ConvNetD4", 10).depth == 4
    assert get_model("ConvNetW64", 10).width == 64
    assert get_model("ConvNetAL", 10).activation == "leaky_relu"
    assert get_model("ConvNetMP", 10).pooling == "max"
    twin = instance_norm_twin(get_model("ConvNetBN", 10))
    assert twin.norm == "instance" and not uses_batch_norm(twin)


@pytest.mark.parametrize("bad", [dict(name="ResNet99"), dict(name="ConvNetXYZ"), dict(name="ConvNet", norm="weird"),
                                 dict(name="ConvNet", depth=7), dict(name="MLP", depth=3)])
def test_bad_model_requests_are_config_errors(bad):
    name = bad.pop("name")
    with pytest.raises(ConfigError):
        get_model(name, 10, **bad)


def test_first_conv_pads_28x28_to_32x32_features():
    module = get_model("ConvNet", 10)
    x = jnp.zeros((1, 28, 28, 1))
    variables = module.init(jax.random.PRNGKey(0), x)
    assert module.apply(variables, x, features_only=True).shape == (1, 128 * 4 * 4)


def test_pytorch_default_initialisation_bounds():
    module = get_model("ConvNet", 10)
    params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
    for layer, fan_in in (("Conv_0", 27), ("Conv_1", 1152)):
        for leaf in ("kernel", "bias"):
            w = np.asarray(params[layer][leaf])
            bound = 1 / np.sqrt(fan_in)
            assert np.abs(w).max() <= bound
            assert np.abs(w).max() > 0.9 * bound  # uniform over the whole range, not a narrower law
    dense = np.asarray(params["Dense_0"]["kernel"])
    assert np.abs(dense).max() <= 1 / np.sqrt(2048)
    norm = params["GroupNorm_0"]
    assert np.all(np.asarray(norm["scale"]) == 1) and np.all(np.asarray(norm["bias"]) == 0)


def test_instance_norm_normalises_each_channel_of_each_image():
    module = get_model("ConvNet", 10, width=8, depth=1, activation="relu", pooling="none")
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 3)) * 5 + 2
    variables = module.init(jax.random.PRNGKey(0), x)
    _, inter = module.apply(variables, x, capture_intermediates=True)
    h = np.asarray(inter["intermediates"]["GroupNorm_0"]["__call__"][0])
    np.testing.assert_allclose(h.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(h.std(axis=(1, 2)), 1, atol=1e-3)
