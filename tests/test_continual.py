"""Continual learning (dcjax.apps.continual): the distillation loss, balanced batches, resizing, a
tiny three-task run on toy data (memories, pairing of methods, resumption after a stop) and bad
input through bin/continual.py."""
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import common
from dcjax import data
from dcjax.apps import class_incremental, continual
from dcjax.support.checkpoints import RunCheckpoints
from dcjax.synthetic_set import load_synthetic

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONTINUAL = [sys.executable, os.path.join(REPO, "bin", "continual.py")]
CLASSES, TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 12, 5
TASKS = ("toy_a", "toy_b", "toy_c")


# ----------------------------------------------------------------------------- pieces

def test_distillation_loss_equals_a_numpy_transcription():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 5)) * 3, rng.normal(size=(6, 5)) * 3

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    for temperature in (1.0, 2.0, 5.0):
        expected = -np.mean(np.sum(softmax(teacher / temperature) * np.log(softmax(student / temperature)), axis=1))
        got = continual.distillation_loss(jnp.asarray(student), jnp.asarray(teacher), temperature)
        np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    # The teacher is a fixed target: no gradient flows into it.
    grad = jax.grad(lambda t: continual.distillation_loss(jnp.asarray(student), t, 2.0))(jnp.asarray(teacher))
    assert not np.asarray(grad).any()


def test_balanced_finetuning_sees_every_class_and_task_equally_often():
    # The fine-tuning pool is the memory: ipc images of every class of every task. Its batches are
    # shuffled passes, so over whole passes each (task, class) is drawn equally often.
    ipc, tasks = 3, 3
    task_of = np.repeat(np.arange(tasks), ipc * CLASSES)
    class_of = np.tile(np.repeat(np.arange(CLASSES), ipc), tasks)
    n = len(task_of)
    batches = np.asarray(continual.pass_order(jax.random.PRNGKey(0), n, steps=n // 4 * 5, batch_size=4))
    assert batches.shape == (n // 4 * 5, 4)
    counts = np.zeros((tasks, CLASSES), int)
    np.add.at(counts, (task_of[batches.ravel()], class_of[batches.ravel()]), 1)
    assert (counts == 5 * ipc).all()
    assert (np.bincount(batches.ravel(), minlength=n) == 5).all()


def test_resize_makes_rgb_of_grey_and_keeps_normalisation():
    x = np.full((2, 8, 8), 200, np.uint8)
    dataset = data.from_arrays("toy", x, np.array([0, 1]), x, np.array([0, 1]), mean=(0.5,), std=(0.25,))
    big = data.resize(dataset, (16, 12, 3))
    assert big.image_shape == (16, 12, 3) and big.mean == (0.5,) * 3 and big.std == (0.25,) * 3
    np.testing.assert_allclose(np.asarray(big.x_train), (200 / 255 - 0.5) / 0.25, rtol=1e-5)
    assert data.resize(dataset, (8, 8, 1)) is dataset
    rgb = data.resize(big, (8, 8, 3))
    with pytest.raises(data.DataError, match="cannot turn toy's 3-channel images into 1-channel"):
        data.resize(rgb, (8, 8, 1))


def test_class_subset_keeps_the_classes_in_the_order_given():
    x = np.arange(12, dtype=np.uint8).reshape(12, 1, 1) * 20
    y = np.arange(12) % 4
    dataset = data.from_arrays("toy", x, y, x[:8], y[:8], class_names=("a", "b", "c", "d"))
    subset = data.class_subset(dataset, [3, 1])
    assert subset.class_names == ("d", "b") and subset.num_classes == 2
    np.testing.assert_array_equal(subset.y_train, [1, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(subset.x_train, np.asarray(dataset.x_train)[[1, 3, 5, 7, 9, 11]])
    np.testing.assert_array_equal(subset.y_test, [1, 0, 1, 0])
    assert subset.class_counts.tolist() == [3, 3] and subset.mean == dataset.mean
    members = np.asarray(subset.class_index[0, :3])
    assert (np.asarray(subset.y_train)[members] == 0).all()
    with pytest.raises(data.ConfigError, match="distinct classes in 0..3"):
        data.class_subset(dataset, [1, 1])


# ----------------------------------------------------------------------------- a tiny run

def _toy_task(seed):
    """4 classes of 8x8 grey images: a per-task, per-class pattern plus noise."""
    rng = np.random.default_rng(seed)
    patterns = rng.uniform(0, 255, (CLASSES, 8, 8, 1))

    def split(per_class):
        y = np.repeat(np.arange(CLASSES), per_class)
        return np.clip(patterns[y] * 0.6 + rng.uniform(0, 100, (len(y), 8, 8, 1)), 0, 255).astype(np.uint8), y

    return (*split(TRAIN_PER_CLASS), *split(TEST_PER_CLASS))


def toy_config(directory, memories=("herding", "condensed", "random")):
    """Three toy tasks at 8x8x3, tiny steps and network: small enough for the test suite."""
    for i, name in enumerate(TASKS):
        path = os.path.join(directory, f"{name}.npz")
        if not os.path.exists(path):
            x_train, y_train, x_test, y_test = _toy_task(i)
            np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    c = common.continual_setting(TASKS)
    c.data_dir = str(directory)
    c.image_shape = (8, 8, 3)
    c.memories = memories
    c.ipc, c.repetitions, c.batch_size, c.test_per_task = 2, 2, 8, 16
    c.train.steps, c.finetune.steps = 12, 6
    c.net.width, c.net.depth = 4, 1
    c.condense.num_iterations, c.condense.batch_real, c.condense.outer_loop, c.condense.inner_loop = 2, 4, 1, 1
    c.condense.net.width, c.condense.net.depth, c.condense.batch_train = 4, 1, 8
    c.condense.checkpoint_every, c.condense.log_every = 1, 1
    return c


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("continual")
    config = toy_config(directory)
    workdir = str(directory / "run")
    return config, workdir, continual.run(config, workdir, visible=False)


def test_a_run_reports_every_method_at_every_stage(finished_run):
    config, workdir, report = finished_run
    names = [m.name for m in continual.methods(config)]
    assert sorted(report["methods"]) == sorted(names) and len(names) == 6
    for name in names:
        stages = report["methods"][name]["stages"]
        assert len(stages) == 3 and all(0 <= s["mean"] <= 1 for s in stages)
        assert list(report["methods"][name]["per_task"][2]) == list(TASKS)
    for file in ("continual.json", "continual.md", "continual.png"):
        assert os.path.getsize(os.path.join(workdir, file)) > 0
    with open(os.path.join(workdir, "continual.json")) as f:
        assert json.load(f)["methods"] == json.loads(json.dumps(report["methods"]))
    # Stage 1 uses no memory (it is built after training, and balanced fine-tuning starts at stage 2):
    # within a distillation setting every memory starts from the same network and batches.
    for kd in ("kd", "no_kd"):
        first = {m: report["stages"][0]["methods"][f"{m}_{kd}"]["accuracy"] for m in config.memories}
        assert first["herding"] == first["condensed"] == first["random"]
    # ... and at stage 1 distillation has no teacher yet, so it changes nothing either.
    assert report["stages"][0]["methods"]["herding_kd"] == report["stages"][0]["methods"]["herding_no_kd"] | {
        k: report["stages"][0]["methods"]["herding_kd"][k] for k in ("seconds", "train_seconds")}


def test_memories_hold_ipc_per_class_per_task_and_no_test_image(finished_run):
    config, workdir, _ = finished_run
    tasks = continual.load_tasks(config)
    state = {name: s.as_dict() for name, s in continual.load_states(config, workdir).items()}
    per_task = config.ipc * CLASSES
    test_rows = {np.asarray(r).tobytes() for t in tasks for r in t.dataset.x_test}
    for method in continual.methods(config):
        memory_x, memory_y = np.asarray(state[method.name]["memory_x"]), np.asarray(state[method.name]["memory_y"])
        assert memory_x.shape == (config.repetitions, 3 * per_task, 8, 8, 3)
        for r in range(config.repetitions):
            for t in range(3):
                labels = memory_y[r, t * per_task:(t + 1) * per_task]
                assert (np.bincount(labels, minlength=CLASSES) == config.ipc).all()
            assert not test_rows & {row.tobytes() for row in memory_x[r]}
        if method.memory != "condensed":
            # Real memories are training images of their task, recorded by index in their saved sets.
            for r in range(config.repetitions):
                for t, task in enumerate(tasks):
                    saved = load_synthetic(os.path.join(workdir, "memories", method.name, f"repetition_{r}",
                                                        f"{t}_{task.name}"))
                    np.testing.assert_array_equal(saved.images, memory_x[r, t * per_task:(t + 1) * per_task])
                    indices = saved.metadata["selected_indices"]
                    np.testing.assert_array_equal(saved.images, np.asarray(task.dataset.x_train)[indices])
        else:   # one condensed set per task, shared by the repetitions, in its condensation workdir
            for t, task in enumerate(tasks):
                saved = load_synthetic(os.path.join(workdir, "condense", f"{t}_{task.name}"))
                for r in range(config.repetitions):
                    np.testing.assert_array_equal(saved.images, memory_x[r, t * per_task:(t + 1) * per_task])


def test_a_run_stopped_after_stage_1_resumes_and_ends_equal(finished_run, tmp_path, monkeypatch):
    config, workdir, report = finished_run
    config = toy_config(os.path.dirname(workdir))
    resumed_workdir = str(tmp_path / "resumed")

    class StopAfterFirstStage(RunCheckpoints):
        def save(self, step, state, meta):
            super().save(step, state, meta)
            self.wait()
            raise KeyboardInterrupt   # as if killed right after the stage's checkpoint

    monkeypatch.setattr(continual, "RunCheckpoints", StopAfterFirstStage)
    with pytest.raises(KeyboardInterrupt):
        continual.run(config, resumed_workdir, visible=False)
    monkeypatch.setattr(continual, "RunCheckpoints", RunCheckpoints)
    assert RunCheckpoints(resumed_workdir).latest_step() == 0
    trained = []
    monkeypatch.setattr(continual, "_test", lambda *args, _test=continual._test: trained.append(1) or _test(*args))
    again = continual.run(config, resumed_workdir, visible=False)
    assert len(trained) == 2 * len(continual.methods(config))   # stages 2 and 3 only
    strip = lambda r: [{m: {k: v for k, v in s["methods"][m].items() if "seconds" not in k} for m in s["methods"]}
                       for s in r["stages"]]
    assert strip(again) == strip(report)
    changed = toy_config(os.path.dirname(workdir))
    changed.train.lr = 0.02
    with pytest.raises(continual.ConfigError, match="other settings"):
        continual.run(changed, resumed_workdir, visible=False)


# ----------------------------------------------------------------------------- bad input

def _config_file(tmp_path):
    path = tmp_path / "continual_toy.py"
    path.write_text(f"import sys\nsys.path.insert(0, {os.path.join(REPO, 'tests')!r})\n"
                    f"from test_continual import toy_config\n\n"
                    f"def get_config():\n    return toy_config({str(tmp_path)!r}, ('random',))\n")
    return str(path)


@pytest.mark.parametrize("flags,message", [
    (["--config.tasks=('toy_a','digits')"], "error: the tasks must share one label space, but toy_a has 4 classes"),
    (["--config.tasks=('toy_a','toy_rgb')", "--config.image_shape=(8,8,1)"],
     "error: cannot turn toy_rgb's 3-channel images into 1-channel ones"),
    (["--config.memories=('herding','weird')"], "error: config.memories must list distinct memories"),
], ids=["label-spaces", "channels", "memory"])
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, flags, message):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, 8, 8, 3), dtype=np.uint8)
    y = np.arange(8) % 4
    np.savez(tmp_path / "toy_rgb.npz", x_train=x, y_train=y, x_test=x, y_test=y)
    result = subprocess.run(CONTINUAL + [f"--config={_config_file(tmp_path)}", f"--workdir={tmp_path / 'w'}"] + flags,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- the authors' CL_DM protocol

def test_class_orders_are_the_references():
    for order, permutation in enumerate(class_incremental.class_orders(100, 5)):
        np.random.seed(order)
        np.testing.assert_array_equal(permutation, np.random.permutation(100))


def class_incremental_config(directory):
    """The toy task's 4 classes in 2 steps, tiny budget."""
    toy_config(directory)
    c = common.class_incremental_setting("toy_a")
    c.data_dir = str(directory)
    c.steps, c.ipc, c.orders, c.num_eval, c.epochs = 2, 2, 2, 2, 2
    c.recipe.batch_size, c.recipe.augmentation = 8, "none"
    c.herding.width, c.herding.epochs = 4, 1
    c.condense.num_iterations, c.condense.batch_real, c.condense.outer_loop, c.condense.inner_loop = 1, 4, 1, 1
    c.condense.net.width, c.condense.net.depth, c.condense.batch_train = 4, 1, 8
    c.condense.checkpoint_every, c.condense.log_every = 1, 1
    return c


def test_class_incremental_memories_steps_and_resume(tmp_path, monkeypatch):
    config = class_incremental_config(tmp_path)
    workdir = str(tmp_path / "run")
    tested = []
    evaluate = class_incremental.evaluate

    def recording_evaluate(module, images, labels, x_test, y_test, *args):
        tested.append((np.asarray(labels), np.asarray(y_test)))
        return evaluate(module, images, labels, x_test, y_test, *args)

    monkeypatch.setattr(class_incremental, "evaluate", recording_evaluate)
    report = class_incremental.run(config, workdir, visible=False)
    orders = class_incremental.class_orders(CLASSES, 2)
    assert len(tested) == 3 * 2 * 2   # memories x orders x steps
    for i, (labels, y_test) in enumerate(tested):
        order, step = orders[(i // 2) % 2], i % 2
        seen = order[:2 * (step + 1)]
        # Trained only on the memories of the classes seen so far: ipc of each; tested on all their test images.
        assert sorted(np.unique(labels)) == sorted(seen) and (np.bincount(labels)[seen] == config.ipc).all()
        assert sorted(np.unique(y_test)) == sorted(seen) and len(y_test) == TEST_PER_CLASS * len(seen)
    for memory in config.memories:
        assert len(report["methods"][memory]["stages"]) == 2
    for file in ("continual.json", "continual.md", "continual.png"):
        assert os.path.getsize(os.path.join(workdir, file)) > 0
    # A run killed during its last step (torn last line) redoes only that step, with equal results.
    log = os.path.join(workdir, class_incremental.RESULTS_LOG)
    with open(log) as f:
        lines = f.read().splitlines()
    with open(log, "w") as f:
        f.write("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    tested.clear()
    again = class_incremental.run(config, workdir, visible=False)
    assert len(tested) == 1
    assert [m["stages"] for m in again["methods"].values()] == [m["stages"] for m in report["methods"].values()]
