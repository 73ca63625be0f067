"""What one outer iteration of Algorithm 1 does, observed from inside the compiled program.

tests/test_condense.py and tests/test_matching.py cover storage, resumption, signals and the
distances; this file checks the algorithm itself against the paper and the authors' code
(its main.py loop): on a tiny problem the set learns (the matching loss falls
and networks trained on it beat networks trained on its noise start); every iteration draws a
fresh network from its own key, deterministically; an iteration runs T matching steps and T-1
network updates of zeta_theta epochs in between, each matching step moves the images once by
PyTorch's SGD with momentum (momentum kept across iterations); batch-norm statistics are set by a
training-mode pass over real images and then used frozen while matching.

The library's own `train_epochs` and `matching_loss_and_grad` are wrapped (`spying`) with
`jax.debug.callback`s that record, at run time, what every inner update and every matching step
received and returned; the outer iteration is built after wrapping, so it runs the wrappers.
"""
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import dcjax
from configs import common
from dcjax import condensation, configuration, data, matching, sharding, training


# ---- spying on the outer iteration ----------------------------------------------------------

def _host(tree):
    return jax.tree_util.tree_map(np.array, tree)


class Spy:
    """Run-time records of the outer iterations: `events` is [("match" | "train", values)] in run
    order (`take` hands them over iteration by iteration); `apply_calls` the (train, mutable) arguments of every network application inside
    matching (trace time) and `apply_stats` the batch statistics each one ran with (run time)."""

    def __init__(self):
        self.events, self.apply_calls, self.apply_stats = [], [], []

    def _record(self, kind, **values):
        jax.debug.callback(lambda v: self.events.append((kind, _host(v))), values, ordered=True)

    def matching(self, real_fn):
        def matching_loss_and_grad(apply_fn, params, frozen, syn, real, *args, **kwargs):
            def watched_apply(variables, x, *a, **kw):
                self.apply_calls.append((kw.get("train"), kw.get("mutable")))
                if "batch_stats" in variables:
                    jax.debug.callback(lambda s: self.apply_stats.append(_host(s)), variables["batch_stats"])
                return apply_fn(variables, x, *a, **kw)

            losses, grads = real_fn(watched_apply, params, frozen, syn, real, *args, **kwargs)
            self._record("match", params=params, frozen=frozen, syn=syn, grads=grads)
            return losses, grads
        return matching_loss_and_grad

    def training(self, real_fn):
        def train_epochs(apply_fn, tx, variables, opt_state, x, y, key, epochs, batch_size, *args, **kwargs):
            out = real_fn(apply_fn, tx, variables, opt_state, x, y, key, epochs, batch_size, *args, **kwargs)
            self._record("train", before=variables, after=out[0], x=x, y=y, epochs=jnp.asarray(epochs))
            return out
        return train_epochs

    def take(self):
        """The events since the last call (after waiting for every callback)."""
        jax.effects_barrier()
        events, self.events = self.events, []
        return events


@contextlib.contextmanager
def spying():
    """Wrap the inner update and matching where the outer iteration calls them from."""
    spy = Spy()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(condensation, "train_epochs", spy.training(training.train_epochs))
        # Every run has a device layout; its shard_map'ed matching calls sharding's matching_loss_and_grad.
        mp.setattr(sharding, "matching_loss_and_grad", spy.matching(matching.matching_loss_and_grad))
        yield spy


class Run:
    """A condensation driven one outer iteration at a time, as `condensation.condense` drives it."""

    def __init__(self, config, dataset):
        self.config = config
        self.module = configuration.model_from_config(config, dataset.num_classes, dataset.image_shape)
        self.layout = sharding.class_layout(config, dataset.num_classes)
        self.dataset = self.layout.put_replicated(dataset)
        self.start = _host(condensation.init_state(config, dataset))   # host copy: steps donate their input
        self.step = condensation.make_outer_iteration(self.module, config, self.layout)

    def iterate(self, host_state, num_iterations, spy):
        """(final host state, [mean loss], [events of each iteration]) from `host_state`."""
        state = condensation.place_state(jax.tree_util.tree_map(jnp.asarray, host_state), self.layout)
        losses, events = [], []
        for _ in range(num_iterations):
            state, loss = self.step(state, self.dataset)
            losses.append(float(loss))
            events.append(spy.take())
        return _host(state), losses, events

    def fresh_params(self, host_state, iteration):
        """The network the library draws for `iteration`: module.init with the iteration's key
        (`condensation.iteration_keys`)."""
        init_key, _ = condensation.iteration_keys(jnp.asarray(host_state.key), iteration)
        return _host(self.module.init(init_key, jnp.asarray(host_state.images[0]), train=False)["params"])


def matches(iteration_events):
    return [v for k, v in iteration_events if k == "match"]


def train_steps(iteration_events):
    return [v for k, v in iteration_events if k == "train"]


def assert_trees_equal(a, b):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


def trees_differ(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def config_for(**changes):
    c = common.get_config()
    c.dataset, c.init, c.seed = "digits", "noise", 0
    c.net.width, c.net.depth = 8, 2
    c.class_parallel = "vmap"   # compiles faster than unrolled on CPU; the modes agree (test_matching)
    for k, v in changes.items():
        group, _, field = k.rpartition(".")
        (c[group] if group else c)[field] = v
    return c


# ---- the two condensations the tests look at --------------------------------------------------

DIGITS_ITERATIONS = 40


@pytest.fixture(scope="module")
def digits_run():
    """sklearn digits, ipc 1 from noise, the paper's ipc-1 loops (T=1), DIGITS_ITERATIONS iterations."""
    with spying() as spy:
        run = Run(config_for(ipc=1, batch_real=32), data.load("digits"))
        final, losses, events = run.iterate(run.start, DIGITS_ITERATIONS, spy)
        yield run, final, losses, events


BN_CLASSES, BN_PER_CLASS, BN_IPC, T, ZETA = 3, 16, 2, 3, 2


@pytest.fixture(scope="module")
def bn_run():
    """Three digit classes with exactly bn_batch_per_class training images each (so the batch-norm
    pass sees all of them), a batch-norm ConvNet, T=3 matching steps, zeta_theta=2; 2 iterations."""
    digits = data.load("digits")
    mean, std = np.asarray(digits.mean, np.float32), np.asarray(digits.std, np.float32)
    x, y = np.asarray(digits.x_train) * std + mean, np.asarray(digits.y_train)   # back to [0, 1]
    x_test, y_test = np.asarray(digits.x_test) * std + mean, np.asarray(digits.y_test)
    train = np.concatenate([np.flatnonzero(y == c)[:BN_PER_CLASS] for c in range(BN_CLASSES)])
    test = np.flatnonzero(y_test < BN_CLASSES)
    toy = data.from_arrays("toy", np.clip(x[train], 0, 1), y[train], np.clip(x_test[test], 0, 1), y_test[test])
    config = config_for(ipc=BN_IPC, outer_loop=T, inner_loop=ZETA, batch_real=8,
                        bn_batch_per_class=BN_PER_CLASS, **{"net.norm": "batch"})
    with spying() as spy:
        run = Run(config, toy)
        final, losses, events = run.iterate(run.start, 2, spy)
        yield run, final, events, spy


# ---- 1. it learns -------------------------------------------------------------------------------

def test_matching_loss_falls_and_the_learnt_set_beats_its_noise_start(digits_run):
    run, final, losses, _ = digits_run
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    labels = condensation.class_major_labels(*final.images.shape[:2])
    recipe = dcjax.EvalRecipe(epochs=50)

    def accuracy(images):
        accs = dcjax.evaluate(run.module, images.reshape((-1,) + images.shape[2:]), labels, run.dataset.x_test,
                              run.dataset.y_test, jax.random.PRNGKey(0), num_models=2, recipe=recipe)
        return float(np.mean(accs))

    learnt, noise = accuracy(final.images), accuracy(run.start.images)
    assert learnt > noise + 0.2, (learnt, noise)


# ---- 2. a fresh network every iteration -----------------------------------------------------------

def test_every_outer_iteration_draws_a_fresh_network_from_its_key_deterministically(bn_run):
    run, _, events, spy = bn_run
    first = [matches(iteration)[0]["params"] for iteration in events]
    last_trained = train_steps(events[0])[-1]["after"]["params"]
    assert trees_differ(first[0], first[1])
    assert trees_differ(first[1], last_trained)   # not the network the previous iteration trained
    for k in range(len(events)):
        assert_trees_equal(first[k], run.fresh_params(run.start, k))

    # Iteration 0 run again from the same state draws the same network and the same real batches,
    # and ends in the same images, bit for bit.
    again_final, _, again = run.iterate(run.start, 1, spy)
    assert [k for k, _ in again[0]] == [k for k, _ in events[0]]
    for (_, a), (_, b) in zip(again[0], events[0]):
        assert_trees_equal(a, b)
    np.testing.assert_array_equal(again_final.images, matches(events[1])[0]["syn"])


# ---- 3. T matching steps, T-1 network updates of zeta_theta epochs ---------------------------------

def test_each_iteration_is_T_matching_steps_with_zeta_theta_epochs_of_training_between_them(bn_run):
    run, final, events, _ = bn_run
    for iteration in events:
        assert [k for k, _ in iteration] == ["match", "train"] * (T - 1) + ["match"]   # none after the last
        steps, trains = matches(iteration), train_steps(iteration)
        assert [int(t["epochs"]) for t in trains] == [ZETA] * (T - 1)
        for t, train in enumerate(trains):
            # The network trained is the one just matched, on the whole set as updated by that step,
            # with class-major labels; the next step matches with the trained network.
            assert_trees_equal(train["before"]["params"], steps[t]["params"])
            np.testing.assert_array_equal(train["x"], steps[t + 1]["syn"].reshape(train["x"].shape))
            np.testing.assert_array_equal(train["y"], np.repeat(np.arange(BN_CLASSES), BN_IPC))
            assert trees_differ(train["after"]["params"], train["before"]["params"])
            assert_trees_equal(steps[t + 1]["params"], train["after"]["params"])
    # The images change at every matching step (test_images_take_one_pytorch_sgd_step_... checks by how much).
    seen = [s["syn"] for iteration in events for s in matches(iteration)] + [final.images]
    assert all(trees_differ(a, b) for a, b in zip(seen, seen[1:]))


def test_paper_ipc1_setting_matches_once_and_never_trains_the_network(digits_run):
    run, final, _, events = digits_run
    assert run.config.outer_loop is None and run.config.inner_loop is None   # the paper's table: T=1
    assert all([k for k, _ in iteration] == ["match"] for iteration in events)
    seen = [matches(iteration)[0]["syn"] for iteration in events] + [final.images]
    assert all(trees_differ(a, b) for a, b in zip(seen, seen[1:]))


# ---- 4. batch-norm statistics ------------------------------------------------------------------

def test_batch_norm_statistics_come_from_real_images_and_stay_frozen_while_matching(bn_run):
    run, _, events, spy = bn_run
    fresh = run.module.init(jax.random.PRNGKey(0), jnp.asarray(run.start.images[0]), train=False)["batch_stats"]

    def after_pass_over_real(params, stats):
        # Every class has exactly bn_batch_per_class images: the pass sees the whole training set
        # (in some order, which batch statistics do not depend on).
        _, updated = run.module.apply({"params": params, "batch_stats": stats}, run.dataset.x_train,
                                      train=True, mutable=["batch_stats"])
        return updated["batch_stats"]

    for iteration in events:
        steps, trains = matches(iteration), train_steps(iteration)
        assert trees_differ(steps[0]["frozen"]["batch_stats"], _host(fresh))
        for t, step in enumerate(steps):
            before = fresh if t == 0 else trains[t - 1]["after"]["batch_stats"]
            want = after_pass_over_real(step["params"], before)
            jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                                   step["frozen"]["batch_stats"], _host(want))
            if t < len(trains):
                # Matching left them as they were: the network update starts from them.
                assert_trees_equal(trains[t]["before"]["batch_stats"], step["frozen"]["batch_stats"])
    # Inside matching the network only ever runs in evaluation mode, with the frozen statistics.
    assert spy.apply_calls and all(train is False and mutable is None for train, mutable in spy.apply_calls)
    frozen = [s["frozen"]["batch_stats"] for iteration in events for s in matches(iteration)]
    assert spy.apply_stats
    assert all(any(not trees_differ(seen, f) for f in frozen) for seen in spy.apply_stats)


# ---- 5. the image optimiser is PyTorch's SGD with momentum -----------------------------------------

def torch_sgd(params, grads, lr, momentum):
    """torch.optim.SGD(momentum=m, dampening=0, nesterov=False, weight_decay=0).step, one per grad:
    buf = grad on the first step, then buf = m * buf + grad; param -= lr * buf."""
    p, buf, out = params.copy(), None, []
    for g in grads:
        buf = g.copy() if buf is None else momentum * buf + g
        p = p - lr * buf
        out.append(p)
    return out


@pytest.mark.parametrize("lr,momentum", [(None, None), (0.3, 0.9)])
def test_image_optimizer_equals_pytorch_sgd_with_momentum(lr, momentum):
    config = config_for()
    if lr is not None:
        config.lr_img, config.momentum_img = lr, momentum
    assert (config_for().lr_img, config_for().momentum_img) == (0.1, 0.5)   # the paper's
    rng = np.random.default_rng(0)
    params = rng.standard_normal((3, 2, 4, 4, 1)).astype(np.float32)
    grads = [rng.standard_normal(params.shape).astype(np.float32) for _ in range(5)]
    want = torch_sgd(params, grads, np.float32(config.lr_img), np.float32(config.momentum_img))
    tx = condensation.image_optimizer(config)
    p, state = jnp.asarray(params), tx.init(jnp.asarray(params))
    for g, w in zip(grads, want):
        updates, state = tx.update(jnp.asarray(g), state, p)
        p = p + updates
        np.testing.assert_allclose(np.asarray(p), w, rtol=1e-6, atol=1e-7)


def test_images_take_one_pytorch_sgd_step_per_matching_step_with_momentum_kept_across_iterations(bn_run):
    run, final, events, _ = bn_run
    steps = [s for iteration in events for s in matches(iteration)]
    grads = [s["grads"] for s in steps]
    want = torch_sgd(run.start.images, grads, np.float32(run.config.lr_img), np.float32(run.config.momentum_img))
    np.testing.assert_array_equal(steps[0]["syn"], run.start.images)
    for step, w in zip(steps[1:], want):
        np.testing.assert_allclose(step["syn"], w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final.images, want[-1], rtol=1e-5, atol=1e-6)
