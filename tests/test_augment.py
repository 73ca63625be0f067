"""DC augmentation (dcjax.augment) against the reference's utils.py `augment`, and its use in training."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from configs import common
from dcjax import augment as aug
from dcjax.configuration import validate
from dcjax.errors import ConfigError
from dcjax.evaluate import EvalRecipe, evaluate
from dcjax.nets import get_model
from dcjax.training import train_epochs

RANDOM_OPS = {name: jax.jit(op) for name, op in {
    "crop": aug.crop, "scale": aug.scale, "rotate": aug.rotate, "noise": aug.noise,
    "augment": lambda k, x: aug.augment(k, x, "crop_scale_rotate_noise")}.items()}


def batch(n=6, size=12, channels=3, seed=0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).standard_normal((n, size, size, channels)), jnp.float32)


@pytest.mark.parametrize("name", RANDOM_OPS)
def test_random_ops_keep_shape_and_dtype_and_are_deterministic_per_key(name):
    op, x = RANDOM_OPS[name], batch()
    out = op(jax.random.PRNGKey(0), x)
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out, op(jax.random.PRNGKey(0), x))
    assert not np.array_equal(out, op(jax.random.PRNGKey(1), x))


def is_window(out: np.ndarray, image: np.ndarray, means: np.ndarray, row: int, col: int) -> bool:
    """Whether `out` is the padded window (the fill equals the means up to summation order)."""
    return np.allclose(out, padded_window(image, means, row, col), rtol=0, atol=1e-6)


def padded_window(image: np.ndarray, means: np.ndarray, row: int, col: int) -> np.ndarray:
    """The reference's cropfun: pad by 4 with the channel means, window at (row, col)."""
    size = image.shape[0]
    padded = np.broadcast_to(means, (size + 8, size + 8, image.shape[-1])).copy()
    padded[4:4 + size, 4:4 + size] = image
    return padded[row:row + size, col:col + size]


def test_crop_is_a_window_of_the_mean_padded_batch():
    x, offsets = batch(), jnp.array([[0, 7], [7, 0], [3, 5], [4, 4], [1, 1], [6, 2]])
    means = np.asarray(x).mean(axis=(0, 1, 2))
    out = np.asarray(aug.crop_at(x, offsets))
    for i, (r, c) in enumerate(np.asarray(offsets)):
        assert is_window(out[i], np.asarray(x[i]), means, r, c)
    np.testing.assert_array_equal(jax.jit(aug.crop_at)(x, offsets), out)
    out = np.asarray(RANDOM_OPS["crop"](jax.random.PRNGKey(3), x))
    for i in range(len(x)):   # every random crop is one of the 8 x 8 windows (offsets 0..7, never 8)
        assert any(is_window(out[i], np.asarray(x[i]), means, r, c) for r in range(8) for c in range(8))


def reference_scale(image: np.ndarray, h: int, w: int) -> np.ndarray:
    """The reference's scalefun on an HWC image: F.interpolate 'nearest', zero canvas, centre crops."""
    size = image.shape[0]
    rows = np.minimum(np.floor(np.arange(h, dtype=np.float32) * np.float32(size / np.float32(h))), size - 1)
    cols = np.minimum(np.floor(np.arange(w, dtype=np.float32) * np.float32(size / np.float32(w))), size - 1)
    resized = image[rows.astype(int)][:, cols.astype(int)]
    m = max(h, w, size)
    canvas = np.zeros((m, m, image.shape[-1]), np.float32)
    canvas[(m - h) // 2:(m - h) // 2 + h, (m - w) // 2:(m - w) // 2 + w] = resized
    return canvas[(m - size) // 2:(m - size) // 2 + size, (m - size) // 2:(m - size) // 2 + size]


def test_scale_matches_the_reference_resize_and_is_identity_at_factor_one():
    x, sizes = batch(), jnp.array([[12, 12], [9, 14], [14, 9], [10, 10], [13, 11], [11, 13]])
    out = np.asarray(aug.scale_to(x, sizes))
    np.testing.assert_array_equal(out[0], x[0])
    for i, (h, w) in enumerate(np.asarray(sizes)):
        np.testing.assert_array_equal(out[i], reference_scale(np.asarray(x[i]), h, w))
    np.testing.assert_array_equal(jax.jit(aug.scale_to)(x, sizes), out)


def test_rotate_matches_scipy_geometry_and_np_rot90():
    x, angles = batch(), jnp.array([0, 90, -45, 17, -1, 44])
    out = np.asarray(aug.rotate_by(x, angles))
    np.testing.assert_array_equal(out[0], x[0])
    np.testing.assert_allclose(out[1], np.rot90(np.asarray(x[1]), axes=(0, 1)), atol=1e-5)
    cval = np.asarray(x).mean(axis=(0, 1, 2)).mean()
    for i in range(2, 6):   # scipy.ndimage.rotate (reshape, then the reference's centre crop), bilinear
        rotated = ndimage.rotate(np.asarray(x[i]), int(angles[i]), axes=(0, 1), order=1, mode="grid-constant",
                                 cval=cval)
        r, c = (rotated.shape[0] - 12) // 2, (rotated.shape[1] - 12) // 2
        np.testing.assert_allclose(out[i], rotated[r:r + 12, c:c + 12], atol=1e-5)
    np.testing.assert_allclose(jax.jit(aug.rotate_by)(x, angles), out, rtol=0, atol=1e-5)   # fused float ops


def test_noise_has_the_reference_scale():
    x = batch()
    assert abs(float(jnp.std(RANDOM_OPS["noise"](jax.random.PRNGKey(0), x) - x)) - 0.001) < 1e-4


def test_each_image_gets_one_op_of_the_strategy():
    x = batch(n=16, size=8, channels=1)
    means = np.asarray(x).mean(axis=(0, 1, 2))
    out = np.asarray(jax.jit(lambda k, x: aug.augment(k, x, "crop_noise"))(jax.random.PRNGKey(0), x))
    cropped = [any(is_window(out[i], np.asarray(x[i]), means, r, c) for r in range(8) for c in range(8))
               for i in range(16)]
    noised = [0 < np.abs(out[i] - x[i]).max() < 0.01 for i in range(16)]
    assert all(a != b for a, b in zip(cropped, noised)) and 0 < sum(cropped) < 16


def test_none_is_identity_and_unknown_ops_are_config_errors():
    x = batch()
    assert aug.augment(jax.random.PRNGKey(0), x, "none") is x
    with pytest.raises(ConfigError, match="crop.*scale.*rotate.*noise"):
        aug.augment(jax.random.PRNGKey(0), x, "crop_flip")
    config = common.get_config()
    config.eval.augmentation = "crop_cutout"
    with pytest.raises(ConfigError, match="config.eval.augmentation"):
        validate(config)


def test_default_strategy_follows_get_daparam_and_auto_resolves_in_the_recipe():
    assert aug.default_strategy("MNIST", "ConvNet") == aug.default_strategy("mnist", None) == "crop_scale_rotate"
    assert aug.default_strategy("mnist", "ConvNetBN") == aug.default_strategy("cifar10", "ConvNetBN") == "crop_noise"
    assert aug.default_strategy("fashion_mnist", "ConvNet") == "none"
    config = common.paper_setting("mnist", 1)
    recipe = EvalRecipe.from_config(config)
    assert recipe.augmentation == "crop_scale_rotate" and recipe.epochs == 1000
    config.eval.augmentation = "noise"
    assert EvalRecipe.from_config(config).augmentation == "noise"


def tiny_training(**kwargs):
    module = get_model("MLP", 3, width=8)
    x, y = batch(n=8, size=8, channels=1), jnp.arange(8) % 3
    variables = module.init(jax.random.PRNGKey(0), x[:1])
    tx = EvalRecipe().optimizer(0.01)
    out, _ = train_epochs(module.apply, tx, variables, tx.init(variables["params"]), x, y,
                          jax.random.PRNGKey(1), 2, 4, **kwargs)
    return jax.tree.leaves(out)


def test_training_without_augment_is_unchanged_and_with_it_differs():
    plain = tiny_training()
    for a, b in zip(plain, tiny_training(augment=None)):
        np.testing.assert_array_equal(a, b)
    augmented = tiny_training(augment=lambda k, x: aug.augment(k, x, "crop_scale_rotate"))
    assert all(np.isfinite(a).all() for a in augmented)
    assert any(not np.array_equal(a, b) for a, b in zip(plain, augmented))


def test_evaluation_with_augmentation_runs():
    x, y = batch(n=9, size=8, channels=1), jnp.arange(9) % 3
    accs = evaluate(get_model("MLP", 3, width=8), x, y, x, y, jax.random.PRNGKey(0), 2,
                    EvalRecipe(augmentation="crop_noise", epochs=2))
    assert accs.shape == (2,) and np.all((0 <= accs) & (accs <= 1))
