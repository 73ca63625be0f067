"""Distribution matching (dcjax.distribution_matching): its loss against a NumPy transcription of
the reference's main_DM.py, and DM condensation's determinism, resumption and any-ipc runs."""
import shutil

import jax.numpy as jnp
import numpy as np

import dcjax
from dcjax import distribution_matching as dm
from test_condense import tiny_config


def test_dm_loss_equals_a_numpy_transcription():
    rng = np.random.default_rng(0)
    real, syn = rng.normal(size=(3, 5, 4, 4, 2)), rng.normal(size=(3, 2, 4, 4, 2))
    w = rng.normal(size=(32, 6))
    embed = lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ w)
    expected = sum(np.sum((np.tanh(real[c].reshape(5, -1) @ w).mean(0) - np.tanh(syn[c].reshape(2, -1) @ w).mean(0)) ** 2)
                   for c in range(3))
    for batch_norm in (False, True):   # the same for an embedding without batch statistics
        got = dm.dm_loss(embed, jnp.asarray(real), jnp.asarray(syn), batch_norm)
        np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # Batch statistics: one pass over all classes (the reference's 'BN' branch) differs from class by class.
    centred = lambda x: x.reshape(x.shape[0], -1) - x.reshape(x.shape[0], -1).mean(0)
    assert not np.isclose(float(dm.dm_loss(centred, jnp.asarray(real), jnp.asarray(syn), True)),
                          float(dm.dm_loss(centred, jnp.asarray(real), jnp.asarray(syn), False)))


def dm_config(**changes):
    return tiny_config(method="dm", lr_img=1.0, init="real", **changes)


def test_dm_condensation_is_deterministic_resumable_and_moves_the_images(tmp_path):
    first = dcjax.condense(dm_config(), str(tmp_path / "a"))
    dcjax.condense(dm_config(num_iterations=2), str(tmp_path / "b"))
    shutil.rmtree(tmp_path / "b" / "synthetic")
    resumed = dcjax.condense(dm_config(), str(tmp_path / "b"))
    np.testing.assert_array_equal(resumed.images, first.images)
    start = dcjax.condense(dm_config(num_iterations=0), str(tmp_path / "c"))
    assert not np.allclose(first.images, start.images)
    assert first.metadata["eval_recipe"]["augmentation"].startswith("dsa:")


def test_dm_runs_any_ipc_and_batch_norm_networks_without_dsa(tmp_path):
    synset = dcjax.condense(dm_config(ipc=3, dsa_strategy="none", **{"net.norm": "batch"}), str(tmp_path))
    assert synset.images.shape == (30, 8, 8, 1) and np.isfinite(synset.images).all()
    assert synset.metadata["eval_recipe"]["augmentation"] == "none"


def test_dm_loss_and_image_gradient_are_the_same_however_the_classes_run():
    import jax
    from dcjax import dsa
    rng = np.random.default_rng(1)
    real, syn = jnp.asarray(rng.normal(size=(3, 5, 8, 8, 1))), jnp.asarray(rng.normal(size=(3, 2, 8, 8, 1)))
    w = jnp.asarray(rng.normal(size=(64, 6)))
    embed = lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ w)
    key = jax.random.PRNGKey(0)

    def augment(c, real_c, syn_c):   # a per-class op: the lax.switch vmap turns into every branch
        k = jax.random.fold_in(key, c)
        return dsa.augment(k, real_c, siamese=True), dsa.augment(k, syn_c, siamese=True)

    results = {}
    for mode in ("vmap", "unroll", "map"):
        for batch_norm in (False, True):
            fn = lambda s: dm.dm_loss(embed, real, s, batch_norm, augment, mode)
            results[mode, batch_norm] = jax.jit(jax.value_and_grad(fn))(syn)
    for (mode, batch_norm), (loss, grad) in results.items():
        np.testing.assert_allclose(loss, results["vmap", batch_norm][0], rtol=1e-5)
        np.testing.assert_allclose(grad, results["vmap", batch_norm][1], rtol=1e-4, atol=1e-6)
    assert float(jnp.abs(results["vmap", False][1]).sum()) > 0
    # The augmentation takes part: without it the loss differs.
    plain = dm.dm_loss(embed, real, syn, False)
    assert not np.isclose(float(plain), float(results["vmap", False][0]))
