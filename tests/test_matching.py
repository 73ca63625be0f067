"""Gradient distances against a NumPy transcription, and the class-parallel matching loss."""
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np
import pytest

from dcjax.errors import ConfigError
from dcjax.matching import (UNROLL_MAX_CLASSES, class_matching_loss, gradient_distance, matching_loss_and_grad,
                            resolve_class_parallel)
from dcjax.nets import get_model
from dcjax.nets import winograd
from dcjax.nets.convolution import conv2d


# ---- plain NumPy transcriptions of SPEC section 1 / reference utils.py:218-271 -----------------

def np_ours(gs, gr):
    total = 0.0
    for s, r in zip(gs, gr):
        if s.ndim < 2:
            continue
        s2 = s.reshape(-1, s.shape[-1]).T.astype(np.float64)
        r2 = r.reshape(-1, r.shape[-1]).T.astype(np.float64)
        for i in range(s2.shape[0]):
            total += 1 - np.dot(r2[i], s2[i]) / (np.linalg.norm(r2[i]) * np.linalg.norm(s2[i]) + 1e-6)
    return total


def np_mse(gs, gr):
    return sum(np.sum((s.astype(np.float64) - r) ** 2) for s, r in zip(gs, gr))


def np_cos(gs, gr):
    s = np.concatenate([x.ravel() for x in gs]).astype(np.float64)
    r = np.concatenate([x.ravel() for x in gr]).astype(np.float64)
    return 1 - np.dot(r, s) / (np.linalg.norm(r) * np.linalg.norm(s) + 1e-6)


def random_tree(seed):
    rng = np.random.default_rng(seed)
    shapes = {"conv": {"kernel": (3, 3, 4, 5), "bias": (5,)}, "norm": {"scale": (5,)},
              "layernorm": {"scale": (6, 6, 5)}, "dense": {"kernel": (20, 7), "bias": (7,)}}
    return jax.tree_util.tree_map(lambda shp: rng.standard_normal(shp).astype(np.float32), shapes,
                                  is_leaf=lambda x: isinstance(x, tuple))


@pytest.mark.parametrize("metric,reference", [("ours", np_ours), ("mse", np_mse), ("cos", np_cos)])
def test_distance_matches_numpy_transcription(metric, reference):
    gs, gr = random_tree(0), random_tree(1)
    got = float(gradient_distance(gs, gr, metric))
    want = reference(jax.tree_util.tree_leaves(gs), jax.tree_util.tree_leaves(gr))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_ours_ignores_one_dimensional_leaves_but_mse_and_cos_do_not():
    gs, gr = random_tree(0), random_tree(1)
    changed = jax.tree_util.tree_map(lambda x: x, gs)
    changed["conv"]["bias"] = changed["conv"]["bias"] * 10 + 3
    changed["norm"]["scale"] = -changed["norm"]["scale"]
    assert float(gradient_distance(changed, gr, "ours")) == pytest.approx(float(gradient_distance(gs, gr, "ours")))
    for metric in ("mse", "cos"):
        assert float(gradient_distance(changed, gr, metric)) != pytest.approx(float(gradient_distance(gs, gr, metric)))


def test_ours_output_axis_is_last():
    # Two output units; the second row of the synthetic gradient is flipped -> distance 2 for that unit.
    gr = {"k": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32)}
    gs = {"k": gr["k"] * np.array([1.0, -1.0], np.float32)}
    assert float(gradient_distance(gs, gr, "ours")) == pytest.approx(2.0, abs=1e-5)


def test_zero_gradient_row_has_finite_derivative():
    gr = {"k": np.ones((4, 3), np.float32)}
    grad = jax.grad(lambda s: gradient_distance({"k": s}, gr, "ours"))(jnp.zeros((4, 3)))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_unknown_metric_is_a_config_error():
    with pytest.raises(ConfigError, match="config.metric"):
        gradient_distance(random_tree(0), random_tree(1), "l1")


# ---- class-parallel matching ---------------------------------------------------------------

def tiny_problem(norm="instance", num_classes=3, ipc=2, n_real=5, size=8, width=8, depth=2, seed=0):
    module = get_model("ConvNet", num_classes, width=width, depth=depth, norm=norm)
    keys = jax.random.split(jax.random.PRNGKey(seed), 3)
    syn = jax.random.normal(keys[0], (num_classes, ipc, size, size, 1))
    real = jax.random.normal(keys[1], (num_classes, n_real, size, size, 1))
    variables = module.init(keys[2], syn[0].astype(jnp.float32))
    return module, variables, syn, real


def per_class_loop(module, variables, syn, real, metric):
    @jax.jit
    def one(syn_c, real_c, c):
        f = lambda s: class_matching_loss(module.apply, variables["params"], {}, s, real_c, c, metric)
        return jax.value_and_grad(f)(syn_c)

    results = [one(syn[c], real[c], jnp.asarray(c)) for c in range(syn.shape[0])]
    return np.stack([r[0] for r in results]), np.stack([r[1] for r in results])


@pytest.mark.parametrize("metric,mode,chunk", [("ours", "vmap", None), ("ours", "vmap", 2), ("ours", "unroll", None),
                                               ("ours", "map", None), ("mse", "vmap", None), ("cos", "unroll", None)])
def test_class_parallel_loss_and_grad_equal_per_class_loop(metric, mode, chunk):
    module, variables, syn, real = tiny_problem()
    want_loss, want_grad = per_class_loop(module, variables, syn, real, metric)
    loss, grad = jax.jit(lambda s, r: matching_loss_and_grad(
        module.apply, variables["params"], {}, s, r, metric, mode, chunk))(syn, real)
    np.testing.assert_allclose(np.asarray(loss), want_loss, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=1e-5, atol=1e-5 * np.abs(want_grad).max())


def test_auto_class_parallel_unrolls_few_classes_and_maps_many_on_cpu():
    assert jax.default_backend() == "cpu"
    assert resolve_class_parallel("auto", 10) == "unroll"
    assert resolve_class_parallel("auto", UNROLL_MAX_CLASSES) == "unroll"
    assert resolve_class_parallel("auto", UNROLL_MAX_CLASSES + 1) == "map"
    assert resolve_class_parallel("auto") == "unroll"
    assert resolve_class_parallel("vmap", 100) == "vmap"   # an explicit mode is kept
    with pytest.raises(ConfigError, match="class_parallel must be one of"):
        resolve_class_parallel("threads", 10)


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_auto_class_parallel_vmaps_every_class_count_on_accelerators(monkeypatch, backend):
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert {resolve_class_parallel("auto", n) for n in (None, 1, 10, 100)} == {"vmap"}


def test_image_gradient_matches_finite_differences():
    with jax.enable_x64(True):
        module, variables, syn, real = tiny_problem(num_classes=2, ipc=1, n_real=4, width=4, depth=1)
        variables = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64), variables)
        syn, real = syn.astype(jnp.float64), real.astype(jnp.float64)

        @jax.jit
        def total(s):
            return jnp.sum(matching_loss_and_grad(module.apply, variables["params"], {}, s, real, "ours", "vmap")[0])

        grad = np.asarray(matching_loss_and_grad(module.apply, variables["params"], {}, syn, real, "ours", "vmap")[1])
        rng = np.random.default_rng(0)
        for _ in range(3):
            direction = rng.standard_normal(syn.shape)
            eps = 1e-5
            numeric = (float(total(syn + eps * direction)) - float(total(syn - eps * direction))) / (2 * eps)
            assert np.sum(grad * direction) == pytest.approx(numeric, rel=1e-5, abs=1e-8)


@pytest.mark.parametrize("padding,channels", [(3, 1), (1, 3), (3, 3), (1, 8), (0, 8)])
def test_matmul_gradient_convolution_equals_xla_convolution(padding, channels):
    # 3 input channels take the im2col path (3 * 9 <= 64), 8 the one-matmul-per-offset path; the
    # input gradient is XLA's for 1 channel and the flipped-kernel convolution (on CPU) above it.
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.normal(keys[0], (2, 7, 7, channels))
    w = jax.random.normal(keys[1], (3, 3, channels, 4))
    probe = jax.random.normal(keys[2], (2, 7 + 2 * padding - 2, 7 + 2 * padding - 2, 4))

    def loss(impl):
        return lambda x, w: jnp.sum(jnp.tanh(conv2d(x, w, padding, 1, impl)) * probe)

    for argnums in (0, 1):
        fast = jax.grad(loss("matmul_grad"), argnums)(x, w)
        slow = jax.grad(loss("xla"), argnums)(x, w)
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)
    # Second order (what the matching loss needs): gradient of a function of the weight gradient.
    second = {impl: jax.grad(lambda x: jnp.sum(jax.grad(loss(impl), 1)(x, w) ** 2))(x) for impl in ("matmul_grad", "xla")}
    np.testing.assert_allclose(second["matmul_grad"], second["xla"], rtol=1e-4, atol=1e-3)


def test_second_order_through_two_convolutions_equals_xla():
    # The matching loss differentiates a weight gradient w.r.t. the images; with two layers that
    # derivative runs through the first layer's input gradient (the flipped-kernel form on CPU).
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    x = jax.random.normal(keys[0], (2, 6, 6, 4))
    w1, w2 = jax.random.normal(keys[1], (3, 3, 4, 5)), jax.random.normal(keys[2], (3, 3, 5, 3))

    def weight_grad_norm(impl):
        def loss(x, w1, w2):
            return jnp.sum(jnp.sin(conv2d(jnp.tanh(conv2d(x, w1, 1, 1, impl)), w2, 1, 1, impl)))
        return lambda x: jnp.sum(jax.grad(loss, 1)(x, w1, w2) ** 2)

    np.testing.assert_allclose(jax.grad(weight_grad_norm("matmul_grad"))(x), jax.grad(weight_grad_norm("xla"))(x),
                               rtol=1e-4, atol=1e-3)


def test_winograd_convolution_equals_xla_in_value_and_to_second_order():
    # conv_impl='winograd' (dcjax/nets/winograd.py): 16 GEMMs on 2x2 tiles, differentiated by autodiff.
    keys = jax.random.split(jax.random.PRNGKey(6), 4)
    x = jax.random.normal(keys[0], (2, 6, 8, 16))
    w1, w2 = jax.random.normal(keys[1], (3, 3, 16, 16)) / 12, jax.random.normal(keys[2], (3, 3, 16, 5)) / 12
    assert winograd.applies(x.shape, w1.shape, 1, 1)
    assert "convolution" not in jax.jit(lambda x, w: conv2d(x, w, 1, 1, "winograd")).lower(x, w1).as_text()
    np.testing.assert_allclose(conv2d(x, w1, 1, 1, "winograd"), conv2d(x, w1, 1, 1, "xla"), rtol=1e-5, atol=1e-5)

    def loss(impl):
        return lambda x, w1, w2: jnp.sum(jnp.sin(conv2d(jnp.tanh(conv2d(x, w1, 1, 1, impl)), w2, 1, 1, impl)))

    first = {impl: jax.jit(jax.grad(loss(impl), (0, 1, 2)))(x, w1, w2) for impl in ("winograd", "xla")}
    for winograd_grad, xla_grad in zip(first["winograd"], first["xla"]):
        np.testing.assert_allclose(winograd_grad, xla_grad, rtol=1e-4, atol=1e-4)
    second = {impl: jax.jit(jax.grad(lambda x: sum(jnp.sum(g ** 2) for g in jax.grad(loss(impl), (1, 2))(x, w1, w2))))(x)
              for impl in ("winograd", "xla")}
    np.testing.assert_allclose(second["winograd"], second["xla"], rtol=1e-4, atol=1e-3)
    batched = jax.jit(jax.vmap(lambda x: jax.grad(loss("winograd"), 1)(x, w1, w2)))(x[:, None])
    looped = jax.jit(jax.vmap(lambda x: jax.grad(loss("xla"), 1)(x, w1, w2)))(x[:, None])
    np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape,padding,stride", [((2, 7, 8, 16), 1, 1), ((2, 6, 6, 8), 1, 1), ((2, 6, 6, 16), 0, 1),
                                                  ((2, 6, 6, 16), 1, 2)])
def test_winograd_leaves_odd_maps_thin_inputs_and_other_geometries_to_the_default(shape, padding, stride):
    x = jax.random.normal(jax.random.PRNGKey(7), shape)
    w = jax.random.normal(jax.random.PRNGKey(8), (3, 3, shape[-1], 4))
    assert not winograd.applies(x.shape, w.shape, padding, stride)
    hlo = jax.jit(lambda x, w: conv2d(x, w, padding, stride, "winograd")).lower(x, w).as_text()
    assert "convolution" in hlo   # the direct convolution, not 16 dots
    np.testing.assert_allclose(conv2d(x, w, padding, stride, "winograd"), conv2d(x, w, padding, stride, "xla"),
                               rtol=1e-5, atol=1e-5)


def test_matmul_gradient_convolution_under_vmap_equals_per_example_gradients():
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    xs = jax.random.normal(keys[0], (3, 2, 6, 6, 8))
    w = jax.random.normal(keys[1], (3, 3, 8, 5))

    def weight_grad(impl):
        return lambda x: jax.grad(lambda w: jnp.sum(jnp.sin(conv2d(x, w, 1, 1, impl))))(w)

    batched = jax.vmap(weight_grad("matmul_grad"))(xs)
    looped = jnp.stack([weight_grad("xla")(x) for x in xs])
    np.testing.assert_allclose(batched, looped, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_transposed_convolution_derivatives_equal_autodiff(padding):
    # The CPU input gradient's own custom derivatives (a forward convolution in dy, a matmul weight
    # gradient in the kernel) against JAX's autodiff of the same flipped-kernel convolution.
    from dcjax.nets.convolution import _flipped_kernel_conv, _transposed_conv
    keys = jax.random.split(jax.random.PRNGKey(6), 2)
    dy = jax.random.normal(keys[0], (2, 5, 5, 4))
    w = jax.random.normal(keys[1], (3, 3, 6, 4))
    for argnums in (0, 1):
        custom = jax.grad(lambda dy, w: jnp.sum(jnp.sin(_transposed_conv(dy, w, padding))), argnums)(dy, w)
        plain = jax.grad(lambda dy, w: jnp.sum(jnp.sin(_flipped_kernel_conv(dy, w, padding))), argnums)(dy, w)
        np.testing.assert_allclose(custom, plain, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("form", ["conv", "matmuls"])
@pytest.mark.parametrize("padding", [0, 1, 2])
def test_weight_gradient_forms_equal_xla_in_loops_in_value_and_second_order(form, padding):
    # The CPU weight gradient (a forward convolution behind a conditional, with its own derivative
    # rule, and the matmuls under vmap) and the accelerators' matmuls, inside a scanned loop as SGD
    # steps run them and vmapped, against JAX's autodiff of XLA's convolution: the gradient and a
    # derivative of a function of it in x and dy.
    from dcjax.nets.convolution import _kernel_gradient_conv, _kernel_gradient_matmuls, _xla_conv
    ours = {"conv": lambda x, dy: _kernel_gradient_conv(x, dy, padding, (3, 3)),
            "matmuls": lambda x, dy: _kernel_gradient_matmuls(x, dy, padding, (3, 3))}[form]

    def xla(x, dy):
        return jax.vjp(lambda w: _xla_conv(x, w, padding, 1), jnp.zeros((3, 3, x.shape[-1], dy.shape[-1])))[1](dy)[0]

    keys = jax.random.split(jax.random.PRNGKey(7), 2)
    size = 6 + 2 * padding - 2
    xs = jax.random.normal(keys[0], (2, 3, 6, 6, 8))
    dys = jax.random.normal(keys[1], (2, 3, size, size, 5))

    def scanned(grad_fn):
        def total(xs, dys):
            return lax.scan(lambda c, xd: (c + jnp.sum(jnp.sin(grad_fn(*xd))), None), 0.0, (xs, dys))[0]
        return jax.jit(lambda xs, dys: (jax.vmap(grad_fn)(xs, dys), jax.grad(total, (0, 1))(xs, dys)))

    def vmapped_second_order(grad_fn):   # the rules under vmap (the CPU form falls back to matmuls there)
        return jax.vmap(jax.grad(lambda x, dy: jnp.sum(jnp.sin(grad_fn(x, dy))), (0, 1)))(xs, dys)

    (grads, second), (want_grads, want_second) = scanned(ours)(xs, dys), scanned(xla)(xs, dys)
    np.testing.assert_allclose(grads, want_grads, rtol=1e-4, atol=1e-4)
    for got, want in zip(second + vmapped_second_order(ours), want_second + vmapped_second_order(xla)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_unrolled_classes_share_one_cached_per_class_function():
    """Eager calls with the same network reuse one jitted per-class function (no recompiling per call)."""
    from dcjax.matching import _class_loss_and_grad
    module = get_model("ConvNet", 3, (8, 8, 1), width=4, depth=1)
    syn = jax.random.normal(jax.random.PRNGKey(0), (3, 1, 8, 8, 1))
    real = jax.random.normal(jax.random.PRNGKey(1), (3, 2, 8, 8, 1))
    params = module.init(jax.random.PRNGKey(2), syn[0])["params"]
    first = matching_loss_and_grad(module.apply, params, {}, syn, real, "ours", "unroll")
    misses = _class_loss_and_grad.cache_info().misses
    second = matching_loss_and_grad(module.apply, params, {}, syn, real, "ours", "unroll")
    assert _class_loss_and_grad.cache_info().misses == misses
    np.testing.assert_array_equal(first[1], second[1])
