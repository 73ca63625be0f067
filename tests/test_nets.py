"""Networks: reference parameter counts, every ConvNet variant and reference family builds, PyTorch-default init."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dcjax.errors import ConfigError
from dcjax.nets import AlexNet, LeNet, ResNet18, VGG11, get_model, instance_norm_twin, uses_batch_norm


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
    norm = params["InstanceNorm_0"]
    assert np.all(np.asarray(norm["scale"]) == 1) and np.all(np.asarray(norm["bias"]) == 0)


def test_instance_norm_normalises_each_channel_of_each_image():
    module = get_model("ConvNet", 10, width=8, depth=1, activation="relu", pooling="none")
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 8, 8, 3)) * 5 + 2
    variables = module.init(jax.random.PRNGKey(0), x)
    _, inter = module.apply(variables, x, capture_intermediates=True)
    h = np.asarray(inter["intermediates"]["InstanceNorm_0"]["__call__"][0])
    np.testing.assert_allclose(h.mean(axis=(1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(h.std(axis=(1, 2)), 1, atol=1e-3)



def test_instance_norm_equals_flax_group_norm_in_value_and_derivatives():
    """The hand-written backward pass gives autodiff's first and second derivatives."""
    import flax.linen as nn
    from dcjax.nets.layers import InstanceNorm
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    x = jax.random.normal(keys[0], (3, 6, 5, 4)) * 3 + 1
    scale, bias = 1 + 0.3 * jax.random.normal(keys[1], (4,)), jax.random.normal(keys[2], (4,))
    weights = jax.random.normal(keys[3], x.shape)
    ours, flax_norm = InstanceNorm(), nn.GroupNorm(num_groups=None, group_size=1, epsilon=1e-5)
    variables = {"params": {"scale": scale, "bias": bias}}

    def loss(module, variables, x):   # a nonlinear readout, so second derivatives are not trivial
        return jnp.sum(jnp.tanh(module.apply(variables, x)) * weights)

    def matching_like(module, x):     # d/dx of a function of the parameter gradient, as matching needs
        grads = jax.grad(loss, argnums=1)(module, variables, x)
        return jnp.sum(jnp.square(grads["params"]["scale"])) + jnp.sum(grads["params"]["bias"] ** 3)

    np.testing.assert_allclose(ours.apply(variables, x), flax_norm.apply(variables, x), atol=1e-5)
    for argnums in (1, 2):
        ours_grad = jax.grad(loss, argnums=argnums)(ours, variables, x)
        flax_grad = jax.grad(loss, argnums=argnums)(flax_norm, variables, x)
        for a, b in zip(jax.tree_util.tree_leaves(ours_grad), jax.tree_util.tree_leaves(flax_grad)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    second = jax.grad(matching_like, argnums=1)
    np.testing.assert_allclose(second(ours, x), second(flax_norm, x), rtol=1e-3, atol=1e-4)
    assert np.abs(np.asarray(second(ours, x))).max() > 1e-2   # a real signal, not two zeros


def test_conv_bias_before_instance_norm_changes_nothing():
    """ConvNet skips adding the conv bias its instance norm would remove; other norms keep it."""
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 16, 16, 3))
    for norm, cancelled in (("instance", True), ("batch", False), ("none", False)):
        module = get_model("ConvNet", 10, width=8, depth=2, norm=norm)
        variables = module.init(jax.random.PRNGKey(0), x)
        shifted = jax.tree_util.tree_map_with_path(
            lambda path, v: v + 1.0 if "Conv" in str(path[1]) and "bias" in str(path[-1]) else v, variables)
        same = np.allclose(module.apply(variables, x), module.apply(shifted, x), atol=1e-5)
        assert same == cancelled, norm
        if cancelled:   # the bias stays a parameter (reference count and init) with a zero gradient
            grads = jax.grad(lambda v: jnp.sum(module.apply(v, x) ** 2))(variables)["params"]
            assert not np.asarray(grads["Conv_0"]["bias"]).any()
            assert np.asarray(grads["Conv_0"]["kernel"]).any()


@pytest.mark.parametrize("channels,padding,size", [(1, 3, 10), (3, 1, 9)])
def test_fused_first_block_equals_conv_then_instance_norm(channels, padding, size):
    """The first block's convolution and instance norm as one operation (patch moments): the same
    values, parameter and image gradients, and image derivative of the parameter gradients."""
    from dcjax.nets.conv_instance_norm import _fused
    from dcjax.nets.convolution import conv2d
    from dcjax.nets.instance_norm import instance_norm
    keys = jax.random.split(jax.random.PRNGKey(channels), 5)
    x = jax.random.normal(keys[0], (3, size, size, channels)) + 0.5   # a mean the norm must remove
    kernel = 0.4 * jax.random.normal(keys[1], (3, 3, channels, 6))
    scale, bias = 1 + 0.3 * jax.random.normal(keys[2], (6,)), 0.2 * jax.random.normal(keys[3], (6,))
    out_size = size + 2 * padding - 2
    weights = jax.random.normal(keys[4], (3, out_size, out_size, 6))
    fused = lambda *args: _fused(*args, padding)
    composed = lambda x, k, s, b: instance_norm(conv2d(x, k, padding), s, b)

    def loss(block, x, k, s, b):
        return jnp.sum(jnp.tanh(block(x, k, s, b)) * weights)

    def matching_like(block, x):   # d/dx of a function of the parameter gradients, as matching needs
        dk, ds, db = jax.grad(loss, argnums=(2, 3, 4))(block, x, kernel, scale, bias)
        return jnp.sum(dk ** 2) + jnp.sum(ds ** 2) + jnp.sum(db ** 3)

    args = (x, kernel, scale, bias)
    np.testing.assert_allclose(jax.jit(fused)(*args), jax.jit(composed)(*args), atol=2e-5)
    first = jax.jit(jax.grad(loss, argnums=(1, 2, 3, 4)), static_argnums=0)
    for ours, theirs in zip(first(fused, *args), first(composed, *args)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    second = jax.jit(jax.grad(matching_like, argnums=1), static_argnums=0)
    second_ours, second_theirs = second(fused, x), second(composed, x)
    np.testing.assert_allclose(second_ours, second_theirs, rtol=1e-3, atol=1e-3 * np.abs(second_theirs).max())
    assert np.abs(np.asarray(second_theirs)).max() > 1e-2


def test_weighted_patch_sum_derivatives_equal_the_products():
    """The grey-scale first block's sum of K multiply-adds has the derivatives of `patches @ weights`
    in forward mode (tangents in either argument) and in reverse mode."""
    from dcjax.nets.conv_instance_norm import _weighted_patch_sum
    keys = jax.random.split(jax.random.PRNGKey(7), 4)
    patches, d_patches = (jax.random.normal(k, (2, 5, 5, 9)) for k in keys[:2])
    weights, d_weights = (jax.random.normal(k, (9, 4)) for k in keys[2:])
    product = lambda p, w: jnp.einsum("...k,kf->...f", p, w)
    for tangents in ((d_patches, d_weights), (d_patches, jnp.zeros_like(weights)),
                     (jnp.zeros_like(patches), d_weights)):
        ours = jax.jvp(_weighted_patch_sum, (patches, weights), tangents)
        theirs = jax.jvp(product, (patches, weights), tangents)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    cotangent = lambda f: jax.grad(lambda p, w: jnp.sum(jnp.sin(f(p, w))), argnums=(0, 1))(patches, weights)
    for a, b in zip(cotangent(_weighted_patch_sum), cotangent(product)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    only_patches = jax.grad(lambda p: jnp.sum(jnp.sin(_weighted_patch_sum(p, weights))))(patches)
    np.testing.assert_allclose(only_patches, cotangent(product)[0], rtol=1e-5, atol=1e-5)
    # what the rule is for: the cotangent of the patches is one product, not K channel reductions
    _, patches_vjp = jax.vjp(lambda p: _weighted_patch_sum(p, weights), patches)
    program = str(jax.make_jaxpr(patches_vjp)(jnp.ones((2, 5, 5, 4))))
    assert "dot_general" in program and "reduce_sum" not in program


def test_convnet_fuses_only_its_thin_first_block_with_instance_norm(monkeypatch):
    from dcjax.nets import layers
    from dcjax.nets.layers import Conv
    thin, wide = jnp.zeros((2, 8, 8, 3)), jnp.zeros((2, 8, 8, 128))
    assert Conv(16, bias_cancelled=True).fuses_with_instance_norm(thin)
    assert not Conv(16, bias_cancelled=True).fuses_with_instance_norm(wide)
    assert not Conv(16).fuses_with_instance_norm(thin)                       # a bias the norm would not see
    assert not Conv(16, bias_cancelled=True, stride=2).fuses_with_instance_norm(thin)
    assert not Conv(16, bias_cancelled=True, impl="xla").fuses_with_instance_norm(thin)
    fused_inputs = []
    monkeypatch.setattr(layers, "conv_instance_norm",
                        lambda x, *rest: fused_inputs.append(x.shape) or layers.instance_norm(
                            layers.conv2d(x, rest[0], rest[3]), rest[1], rest[2]))
    for norm, expected in (("instance", [thin.shape]), ("batch", [])):
        fused_inputs.clear()
        module = get_model("ConvNet", 10, width=8, depth=2, norm=norm)
        module.init(jax.random.PRNGKey(0), thin)
        assert fused_inputs == expected, norm


def test_winograd_convnet_equals_the_default_in_logits_and_matching_gradients():
    # conv_impl='winograd': the first block stays fused (on CPU), the wide 3x3 convolutions of the
    # 8x8 and 4x4 maps become Winograd's 16 GEMMs.
    from dcjax.matching import matching_loss_and_grad
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 2, 16, 16, 1))
    real = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 16, 16, 1))
    modules = {impl: get_model("ConvNet", 2, (16, 16, 1), width=16, conv_impl=impl)
               for impl in ("matmul_grad", "winograd")}
    assert modules["winograd"].depth_for((16, 16, 1)) == 3   # maps 16 (fused), 8 and 4 (Winograd)
    params = modules["matmul_grad"].init(jax.random.PRNGKey(2), x[0])["params"]
    logits = {impl: jax.jit(m.apply)({"params": params}, x[0]) for impl, m in modules.items()}
    np.testing.assert_allclose(logits["winograd"], logits["matmul_grad"], rtol=1e-4, atol=1e-5)
    loss, grad = {}, {}
    for impl, m in modules.items():
        loss[impl], grad[impl] = jax.jit(lambda p, x, r, m=m: matching_loss_and_grad(m.apply, p, {}, x, r, "ours",
                                                                                      "unroll"))(params, x, real)
    np.testing.assert_allclose(loss["winograd"], loss["matmul_grad"], rtol=1e-4)
    np.testing.assert_allclose(grad["winograd"], grad["matmul_grad"], rtol=1e-3, atol=1e-6)

# The reference's other architectures. Counts: sum(p.numel() for p in net.parameters()) of the
# reference's networks.py definitions (LeNet, AlexNet, AlexNetBN, VGG11, VGG11BN, ResNet18,
# ResNet18BN, ResNet18_AP, ResNet18BN_AP) built in PyTorch with channel=1 (28x28) and channel=3
# (32x32), num_classes=10. BatchNorm running statistics are buffers there, not parameters, so the
# batch-norm variants have as many parameters as the instance-norm ones (GroupNorm affine = 2C).
REFERENCE_COUNTS = {  # name: (28x28x1, 32x32x3)
    "LeNet": (61706, 62006),
    "AlexNet": (1865802, 1872202),
    "AlexNetBN": (1867722, 1874122),
    "VGG11": (9229962, 9231114),
    "VGG11BN": (9229962, 9231114),
    "ResNet18": (11172810, 11173962),
    "ResNet18BN": (11172810, 11173962),
    "ResNet18_AP": (11213770, 11250762),
    "ResNet18BN_AP": (11213770, 11250762),
}
SHAPES = ((28, 28, 1), (32, 32, 3))
# Flattened features the classifier reads (the reference's embed()), for 28x28x1 and 32x32x3.
FEATURES = {"LeNet": (84, 84), "AlexNet": (3072, 3072), "VGG11": (512, 512), "ResNet18": (512, 512),
            "ResNet18_AP": (4608, 8192)}
# Batch-norm name -> the network the reference evaluates instead (eval mode S strips from 'BN' on).
TWINS = {"AlexNetBN": "AlexNet", "VGG11BN": "VGG11", "ResNet18BN": "ResNet18", "ResNet18BN_AP": "ResNet18"}


def abstract_params(module, shape):
    """Parameter count and logits shape without computing anything (jax.eval_shape)."""
    x = jax.ShapeDtypeStruct((2,) + shape, jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    logits = jax.eval_shape(module.apply, variables, x)
    return sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables["params"])), logits.shape


@pytest.mark.parametrize("name", REFERENCE_COUNTS)
@pytest.mark.parametrize("shape_index", [0, 1])
def test_reference_architectures_match_reference_parameter_counts(name, shape_index):
    count, logits_shape = abstract_params(get_model(name, 10), SHAPES[shape_index])
    assert count == REFERENCE_COUNTS[name][shape_index]
    assert logits_shape == (2, 10)


@pytest.mark.parametrize("name", [name for name in REFERENCE_COUNTS if name not in TWINS])
def test_reference_architectures_initialise_and_run(name):
    """One real init + forward (32x32x3; both input shapes are traced by the parameter-count test).

    Eager, not jitted: compiling a whole ResNet-18 init costs more than running it op by op.
    """
    module = get_model(name, 10)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3))
    variables = module.init(jax.random.PRNGKey(0), x)
    assert set(variables) == {"params"}
    logits = module.apply(variables, x)
    assert logits.shape == (2, 10) and bool(jnp.all(jnp.isfinite(logits)))


@pytest.mark.parametrize("name", FEATURES)
def test_features_only_and_embed_give_the_classifier_input(name):
    module = get_model(name, 10)
    for shape, size in zip(SHAPES, FEATURES[name]):
        x = jax.ShapeDtypeStruct((2,) + shape, jnp.float32)
        variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
        assert jax.eval_shape(lambda v, x: module.apply(v, x, features_only=True), variables, x).shape == (2, size)
        assert jax.eval_shape(lambda v, x: module.apply(v, x, method="embed"), variables, x).shape == (2, size)


@pytest.mark.parametrize("name", TWINS)
def test_batch_norm_variants_update_running_stats_and_have_the_reference_twin(name):
    module = get_model(name, 10)
    assert uses_batch_norm(module)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3)) + 3.0
    variables = module.init(jax.random.PRNGKey(0), x)
    assert set(variables) == {"params", "batch_stats"}
    logits, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    assert logits.shape == (2, 10) and module.apply(variables, x).shape == (2, 10)
    before = jax.tree_util.tree_leaves(variables["batch_stats"])
    after = jax.tree_util.tree_leaves(updates["batch_stats"])
    assert len(before) == len(after) > 0
    assert any(not np.allclose(b, a) for b, a in zip(before, after))
    twin = instance_norm_twin(module)
    assert twin == get_model(TWINS[name], 10) and not uses_batch_norm(twin)
    for shape, count in zip(SHAPES, REFERENCE_COUNTS[TWINS[name]]):
        assert abstract_params(twin, shape)[0] == count


def test_reference_names_select_family_and_fields():
    assert type(get_model("LeNet", 10)) is LeNet and get_model("LeNet", 10).norm == "none"
    assert get_model("AlexNet", 10) == AlexNet(10, norm="none")
    assert get_model("AlexNetBN", 10) == AlexNet(10, norm="batch")
    assert get_model("VGG11", 10) == VGG11(10, norm="instance")
    assert get_model("VGG11BN", 10) == VGG11(10, norm="batch")
    assert get_model("ResNet18", 10) == ResNet18(10, norm="instance", avg_pool_downsample=False)
    assert get_model("ResNet18BN", 10) == ResNet18(10, norm="batch", avg_pool_downsample=False)
    assert get_model("ResNet18_AP", 10) == ResNet18(10, norm="instance", avg_pool_downsample=True)
    assert get_model("ResNet18BN_AP", 10) == ResNet18(10, norm="batch", avg_pool_downsample=True)
    assert get_model("VGG11BN", 10, norm="instance").norm == "instance"  # explicit overrides win
    assert instance_norm_twin(get_model("ResNet18_AP", 10)) == get_model("ResNet18_AP", 10)  # no BN: unchanged


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ConfigError, match="ResNet18BN_AP.*or a ConvNet variant"):
        get_model("ResNet34", 10)


@pytest.mark.parametrize("name,overrides", [("VGG11", dict(norm="none")), ("ResNet18", dict(norm="group")),
                                            ("AlexNet", dict(norm="layer")), ("LeNet", dict(width=64))])
def test_reference_families_reject_fields_they_do_not_have(name, overrides):
    with pytest.raises(ConfigError):
        get_model(name, 10, **overrides)


def test_resnet_convolutions_have_no_bias():
    variables = jax.eval_shape(get_model("ResNet18", 10).init, jax.random.PRNGKey(0),
                               jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32))
    paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(variables["params"])]
    assert not [p for p in paths if "Conv" in p and "bias" in p]
    assert any("Dense" in p and "bias" in p for p in paths)


# ----------------------------------------------------------------------------- input shapes

def classifier_fan_in(module, shape):
    """Inputs of the first dense layer: the flattened convolutional features (shapes only)."""
    x = jax.ShapeDtypeStruct((1,) + shape, jnp.float32)
    params = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)["params"]
    return params["Dense_0"]["kernel"].shape[0]


@pytest.mark.parametrize("name,features", [("ConvNet", 2048), ("LeNet", 400), ("AlexNet", 3072), ("VGG11", 512)])
@pytest.mark.parametrize("shape", [(28, 28, 1), (28, 28, 3), (32, 32, 1), (32, 32, 3)])
def test_first_layer_padding_follows_the_image_size_not_the_channels(name, features, shape):
    """28x28 inputs are padded up to 32x32 whatever their channels (resized MNIST, grey CIFAR), so
    the classifier reads the reference's feature count for every 28x28 or 32x32 input."""
    assert classifier_fan_in(get_model(name, 10), shape) == features


@pytest.mark.parametrize("shape,depth", [((8, 8, 1), 2), ((16, 16, 3), 3), ((12, 12, 1), 2), ((6, 6, 1), 1),
                                         ((28, 28, 1), 3), ((32, 32, 3), 3), ((64, 64, 3), 3)])
def test_unset_convnet_depth_keeps_the_last_normalised_map_at_least_4x4(shape, depth):
    module = get_model("ConvNet", 10)
    assert module.depth is None and module.depth_for(shape) == depth
    assert get_model("ConvNet", 10, shape).depth == depth
    assert get_model("ConvNetD1", 10, shape).depth == 1   # an explicit depth is kept
    x = jax.ShapeDtypeStruct((1,) + shape, jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    assert len([k for k in variables["params"] if k.startswith("Conv_")]) == depth


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 3, 1), (32, 0, 3), (-28, 28, 1), (32.0, 32, 3),
                                   (True, 32, 3), "32x32x3", 32])
def test_bad_input_shapes_are_config_errors(shape):
    with pytest.raises(ConfigError, match=r"input_shape must be three positive ints .*e\.g\. \(32, 32, 3\)"):
        get_model("ConvNet", 10, shape)


@pytest.mark.parametrize("name,shape", [("VGG11", (8, 8, 1)), ("ResNet18", (8, 8, 3)), ("ConvNetD4", (8, 8, 1)),
                                        ("LeNet", (8, 8, 1)), ("AlexNet", (4, 4, 3)), ("ConvNet", (1, 1, 1)),
                                        ("VGG11", (3, 32, 32))])
def test_images_too_small_for_the_network_are_config_errors(name, shape):
    with pytest.raises(ConfigError, match=rf"model '{name}' cannot take .* images .*needs a feature map of at least"):
        get_model(name, 10, shape)


@pytest.mark.parametrize("name,shape", [("ResNet18BN_AP", (8, 8, 1)), ("AlexNet", (8, 8, 3)), ("MLP", (1, 1, 1)),
                                        ("ConvNetNP", (2, 2, 1)), ("ResNet18", (28, 28, 1)), ("VGG11", (28, 28, 3))])
def test_images_just_big_enough_build(name, shape):
    module = get_model(name, 10, np.array(shape))   # numpy ints are fine
    x = jax.ShapeDtypeStruct((2,) + shape, jnp.float32)
    variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
    assert jax.eval_shape(module.apply, variables, x).shape == (2, 10)


@pytest.mark.parametrize("size", [8, 7])
def test_average_pooling_equals_flax_avg_pool(size):
    """Strided-slice average pooling: Flax's VALID avg_pool values and gradients, odd maps included."""
    import flax.linen as nn
    from dcjax.nets.layers import pool
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size + 2, 3))
    weights = jax.random.normal(jax.random.PRNGKey(1), (2, size // 2, (size + 2) // 2, 3))
    ours, flax_pool = pool(x, "avg"), nn.avg_pool(x, (2, 2), strides=(2, 2))
    assert ours.shape == flax_pool.shape
    np.testing.assert_allclose(ours, flax_pool, atol=1e-6)
    grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * weights))(x)   # noqa: E731
    np.testing.assert_allclose(grad(lambda x: pool(x, "avg")), grad(lambda x: nn.avg_pool(x, (2, 2), strides=(2, 2))),
                               atol=1e-6)


def test_instance_norm_trains_inside_shard_map_with_replicated_parameters():
    """Inside jax.shard_map (here over one device) the maps vary per device while the norm's
    constant-initialised parameters do not: their gradients must still type-check and equal the
    plain gradients (the evaluation of several networks over devices does this)."""
    from jax.sharding import Mesh, PartitionSpec as P
    module = get_model("ConvNet", 10, width=8, depth=1)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 3))
    variables = module.init(jax.random.PRNGKey(1), x)
    grad = jax.grad(lambda v, x: jnp.sum(module.apply(v, x) ** 2))
    mesh = Mesh(np.array(jax.devices()[:1]), ("devices",))
    sharded = jax.jit(jax.shard_map(grad, mesh=mesh, in_specs=(P(), P("devices")), out_specs=P()))(variables, x)
    for a, b in zip(jax.tree_util.tree_leaves(sharded), jax.tree_util.tree_leaves(grad(variables, x))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
