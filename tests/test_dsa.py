"""DSA's differentiable augmentations (dcjax.dsa) against NumPy transcriptions of the reference's
`rand_*` functions (its utils.py, NCHW there, NHWC here), their gradients, and the Siamese rule."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from dcjax import dsa
from dcjax.errors import ConfigError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 8, 8, 2)).astype(np.float32)


def test_strategies_are_checked():
    assert dsa.parse_strategy(dsa.DEFAULT_STRATEGY) == dsa.OPS
    assert dsa.parse_strategy("none") == () and dsa.parse_strategy("") == ()
    with pytest.raises(ConfigError, match=r"unknown DSA operation\(s\) \['blur'\]"):
        dsa.parse_strategy("crop_blur")


def test_color_equals_the_reference_formula():
    b, s, c = (RNG.uniform(size=3).astype(np.float32) for _ in range(3))
    x = X + (b[:, None, None, None] - 0.5) * 1.0
    mean_c = x.mean(axis=3, keepdims=True)
    x = (x - mean_c) * (s[:, None, None, None] * 2.0) + mean_c
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    expected = (x - mean) * (c[:, None, None, None] + 0.5) + mean
    got = dsa.color_with(jnp.asarray(X), jnp.asarray(b), jnp.asarray(s), jnp.asarray(c))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def reference_crop(x, tx, ty):
    """rand_crop after the draws: 1-pixel zero pad, indices clamped to [0, size + 1]."""
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.empty_like(x)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                out[b, i, j] = padded[b, np.clip(i + tx[b] + 1, 0, h + 1), np.clip(j + ty[b] + 1, 0, w + 1)]
    return out


def test_crop_equals_the_clamped_gather_of_the_reference():
    # Shifts within the drawn range (s = int(8 * 0.125 + 0.5) = 1) and far beyond it, where the
    # clamped index keeps reading the zero border.
    for tx, ty in [(np.array([-1, 0, 1]), np.array([1, -1, 0])), (np.array([-5, 3, 7]), np.array([9, -8, 2]))]:
        got = dsa.crop_with(jnp.asarray(X), jnp.asarray(tx), jnp.asarray(ty))
        np.testing.assert_array_equal(got, reference_crop(X, tx, ty))


def reference_cutout(x, ox, oy, size):
    """rand_cutout after the draws: meshgrid of the square, indices clamped, mask set to 0."""
    n, h, w, _ = x.shape
    mask = np.ones((n, h, w), np.float32)
    for b in range(n):
        rows = np.clip(np.arange(size[0]) + ox[b] - size[0] // 2, 0, h - 1)
        cols = np.clip(np.arange(size[1]) + oy[b] - size[1] // 2, 0, w - 1)
        mask[b][np.ix_(rows, cols)] = 0
    return x * mask[..., None]


@pytest.mark.parametrize("height", [8, 7])   # even and odd cutout sizes (4 and int(3.5 + 0.5) = 4; 7 -> 4)
def test_cutout_equals_the_clamped_mask_of_the_reference(height):
    x = RNG.normal(size=(4, height, 9, 1)).astype(np.float32)
    size = dsa.cutout_size(height, 9)
    assert size == (int(height * 0.5 + 0.5), 5)
    ox, oy = np.array([0, 2, height - 1, height]), np.array([0, 9, 4, 1])   # corners and edges: clamping
    got = dsa.cutout_with(jnp.asarray(x), jnp.asarray(ox), jnp.asarray(oy))
    np.testing.assert_array_equal(got, reference_cutout(x, ox, oy, size))


def test_flip_mirrors_the_width():
    got = np.asarray(dsa.flip_with(jnp.asarray(X), jnp.asarray([True, False, True])))
    np.testing.assert_array_equal(got[0], X[0, :, ::-1]) and np.testing.assert_array_equal(got[1], X[1])


def reference_affine(x, theta):
    """F.grid_sample(x, F.affine_grid(theta, x.shape)), bilinear, zeros, align_corners=False."""
    n, h, w, c = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for b in range(n):
        for i in range(h):
            for j in range(w):
                u, v = (2 * j + 1) / w - 1, (2 * i + 1) / h - 1
                sx, sy = theta[b] @ np.array([u, v, 1.0])
                col, row = ((sx + 1) * w - 1) / 2, ((sy + 1) * h - 1) / 2
                r0, c0 = math.floor(row), math.floor(col)
                for r, cc in ((r0, c0), (r0, c0 + 1), (r0 + 1, c0), (r0 + 1, c0 + 1)):
                    if 0 <= r < h and 0 <= cc < w:
                        out[b, i, j] += (1 - abs(row - r)) * (1 - abs(col - cc)) * x[b, r, cc]
    return out


def test_scale_and_rotate_equal_affine_grid_and_grid_sample():
    sx, sy = np.array([0.85, 1.0, 1.19]), np.array([1.1, 1.0, 0.9])
    angle = np.array([-0.25, 0.0, 0.2])
    for theta in (dsa.scale_theta(jnp.asarray(sx), jnp.asarray(sy)), dsa.rotate_theta(jnp.asarray(angle))):
        got = dsa.affine_with(jnp.asarray(X), theta)
        np.testing.assert_allclose(got, reference_affine(X, np.asarray(theta, np.float64)), atol=2e-5)
    identity = dsa.scale_theta(jnp.ones(3), jnp.ones(3))
    np.testing.assert_allclose(dsa.affine_with(jnp.asarray(X), identity), X, atol=1e-6)
    np.testing.assert_allclose(np.asarray(dsa.rotate_theta(jnp.asarray([0.3])))[0],
                               [[math.cos(0.3), -math.sin(0.3), 0], [math.sin(0.3), math.cos(0.3), 0]], rtol=1e-6)


@pytest.mark.parametrize("op", dsa.OPS)
def test_gradients_are_finite_and_match_finite_differences(op):
    key = jax.random.PRNGKey(5)
    x = jnp.asarray(RNG.normal(size=(2, 6, 6, 2)), jnp.float32)
    f = lambda x: dsa.apply_op(op, key, x)
    grad = jax.grad(lambda x: jnp.sum(f(x) ** 2))(x)
    assert bool(jnp.isfinite(grad).all())
    # Bilinear sampling is piecewise linear in x; every op is linear in x up to color's means.
    check_grads(f, (x,), order=1, modes=["rev"], atol=5e-2, rtol=5e-2, eps=1e-2)


@pytest.mark.parametrize("op", dsa.OPS)
def test_siamese_transforms_every_image_and_both_batches_alike(op):
    key = jax.random.PRNGKey(7)
    real = jnp.asarray(RNG.normal(size=(5, 8, 8, 2)), jnp.float32)
    syn = jnp.asarray(RNG.normal(size=(2, 8, 8, 2)), jnp.float32)
    together = dsa.apply_op(op, key, jnp.concatenate([real, syn]), siamese=True)
    np.testing.assert_allclose(together[:5], dsa.apply_op(op, key, real, siamese=True), atol=1e-6)
    np.testing.assert_allclose(together[5:], dsa.apply_op(op, key, syn, siamese=True), atol=1e-6)
    one = lambda i: dsa.apply_op(op, key, real[i:i + 1], siamese=True)[0]
    np.testing.assert_allclose(together[3], one(3), atol=1e-6)
    # Without it, equal images get different draws (flip: some of 16 differ).
    same = jnp.broadcast_to(real[:1], (16,) + real.shape[1:])
    out = np.asarray(dsa.apply_op(op, key, same))
    assert any(not np.allclose(out[0], out[i]) for i in range(1, 16)), op


def test_augment_picks_one_op_per_call_from_the_key_and_jits():
    x = jnp.asarray(X)
    key = jax.random.PRNGKey(11)

    @jax.jit
    def augmented_and_every_op(k):
        return dsa.augment(k, x, siamese=True), [dsa.apply_op(op, jax.random.split(k)[1], x, True) for op in dsa.OPS]

    chosen = []
    for k in jax.random.split(key, 24):
        out, each = augmented_and_every_op(k)
        matches = [op for op, o in zip(dsa.OPS, each) if np.allclose(out, o, atol=1e-6)]
        assert matches   # one op's output (two when the draws of both leave x unchanged, e.g. crop and flip)
        chosen += matches if len(matches) == 1 else []
    assert len(set(chosen)) >= 4   # the op changes with the key
    np.testing.assert_array_equal(dsa.augment(key, x, "none"), x)
    np.testing.assert_array_equal(dsa.augment(key, x, "flip"), dsa.apply_op("flip", jax.random.split(key)[1], x))


# ----------------------------------------------------------------------------- DSA in condensation

def _tiny(**changes):
    import test_condense
    return test_condense.tiny_config(**changes)


def test_dsa_with_every_operation_off_equals_dc_bit_for_bit(tmp_path):
    import dcjax
    dc = dcjax.condense(_tiny(), str(tmp_path / "dc"))
    off = dcjax.condense(_tiny(method="dsa", dsa_strategy="none"), str(tmp_path / "off"))
    np.testing.assert_array_equal(off.images, dc.images)
    on = dcjax.condense(_tiny(method="dsa"), str(tmp_path / "on"))
    assert not np.allclose(on.images, dc.images)


def test_dsa_condensation_is_deterministic_and_resumes_bit_identically(tmp_path):
    import shutil

    import dcjax
    config = _tiny(method="dsa", dsa_strategy="crop_flip_rotate")
    first = dcjax.condense(config, str(tmp_path / "a"))
    dcjax.condense(_tiny(method="dsa", dsa_strategy="crop_flip_rotate", num_iterations=2), str(tmp_path / "b"))
    shutil.rmtree(tmp_path / "b" / "synthetic")
    resumed = dcjax.condense(config, str(tmp_path / "b"))
    np.testing.assert_array_equal(resumed.images, first.images)
    assert first.metadata["eval_recipe"]["augmentation"] == "dsa:crop_flip_rotate"


def test_a_matching_step_augments_real_and_synthetic_batches_of_a_class_alike(monkeypatch):
    from dcjax import condensation, configuration, data, sharding
    config = _tiny(method="dsa", dsa_strategy="rotate", outer_loop=1)
    dataset = data.load("digits")
    seen = {}
    original = sharding.ClassLayout.matching_loss_and_grad

    def spy(self, apply_fn, params, frozen, syn, real, *args):
        jax.debug.callback(lambda s, r: seen.update(syn=s, real=r), syn, real)   # the batches as run
        return original(self, apply_fn, params, frozen, syn, real, *args)

    monkeypatch.setattr(sharding.ClassLayout, "matching_loss_and_grad", spy)
    module = configuration.model_from_config(config, 10, dataset.image_shape)
    layout = sharding.class_layout(config, 10)
    state = condensation.place_state(condensation.init_state(config, dataset), layout)
    # One image per class, identical in the real and the synthetic batch: equal outputs, and the
    # rotation differs between classes (its draw is folded with the class).
    images = jnp.broadcast_to(dataset.x_train[:1][None], state.images.shape)
    monkeypatch.setattr(data, "sample_real", lambda key, ds, n: jnp.broadcast_to(
        dataset.x_train[:1][None], (10, n) + dataset.image_shape))
    jax.block_until_ready(jax.jit(condensation.outer_iteration_function(module, config, layout))(
        state.replace(images=images), dataset))
    syn, real = np.asarray(seen["syn"]), np.asarray(seen["real"])
    np.testing.assert_allclose(real[:, :2], syn, atol=1e-6)
    assert not np.allclose(syn[0], syn[1])


def test_dsa_evaluation_recipe_and_bad_strategies():
    from dcjax import configuration
    from dcjax.evaluate import EvalRecipe, check_augmentation, training_augmentation
    recipe = EvalRecipe.from_config(_tiny(method="dsa"))
    assert recipe.augmentation == "dsa:" + dsa.DEFAULT_STRATEGY
    assert EvalRecipe.from_config(_tiny()).augmentation == "none"
    assert check_augmentation("dsa") == "dsa:" + dsa.DEFAULT_STRATEGY
    x = jnp.asarray(X)
    key = jax.random.PRNGKey(2)
    np.testing.assert_array_equal(training_augmentation("dsa:flip")(key, x), dsa.augment(key, x, "flip"))
    with pytest.raises(ConfigError, match="unknown DSA operation"):
        configuration.validate(_tiny(method="dsa", dsa_strategy="crop_blur"))
    with pytest.raises(ConfigError, match="config.method must be one of"):
        configuration.validate(_tiny(method="dm2"))
    with pytest.raises(ConfigError, match="unknown DSA operation"):
        check_augmentation("dsa:warp")
