"""Algorithm 1 end to end on the embedded digits: determinism, resumption, tracing, storage errors."""
import functools
import os
import shutil
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest

import dcjax
from configs import common
from dcjax import condensation as condense_lib
from dcjax import data as data_lib
from dcjax import configuration, sharding
from dcjax.errors import CheckpointError, ConfigError, DcjaxError

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def tiny_config(**changes):
    c = common.get_config()
    c.dataset, c.ipc, c.num_iterations = "digits", 2, 4
    c.net.width, c.net.depth = 8, 2
    c.batch_real, c.outer_loop, c.inner_loop, c.batch_train = 8, 2, 2, 8   # 20 images: 3 batches per epoch
    c.checkpoint_every, c.eval.num_models = 1, 0
    c.class_parallel = "vmap"   # compiles 3x faster than unrolled; the modes agree (test_matching)
    for k, v in changes.items():
        if "." in k:
            group, field = k.split(".")
            c[group][field] = v
        else:
            c[k] = v
    return c


def condense_and_evaluate(config, workdir):
    """What bin/condense.py does: the set, then its evaluation; returns the run's summary."""
    return dcjax.evaluate_run(config, workdir, dcjax.condense(config, workdir))


def synthetic(workdir):
    return dcjax.load_synthetic(str(workdir)).images


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("reference")
    summary = condense_and_evaluate(tiny_config(**{"eval.num_models": 2, "eval.epochs": 3}), str(workdir))
    return workdir, summary


def test_run_writes_a_loadable_set_with_metadata(reference_run):
    workdir, summary = reference_run
    synset = dcjax.load_synthetic(str(workdir))
    chex.assert_shape(synset.images, (20, 8, 8, 1))
    np.testing.assert_array_equal(synset.labels, np.repeat(np.arange(10), 2))
    meta = synset.metadata
    assert meta["dataset"] == "digits" and meta["ipc"] == 2 and meta["iteration"] == 4
    assert len(meta["mean"]) == 1 and meta["config"]["seed"] == 0
    assert meta["model_fields"]["width"] == 8
    assert 0.0 <= synset.denormalised().min() and synset.denormalised().max() <= 1.0
    for name in ("summary.json", "metrics.jsonl", os.path.join("images", "final.png")):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert len(summary["evaluation"]["accuracies"]) == 2


def test_same_seed_gives_a_bit_identical_set(reference_run, tmp_path):
    dcjax.condense(tiny_config(**{"eval.num_models": 0}), str(tmp_path))
    np.testing.assert_array_equal(synthetic(tmp_path), synthetic(reference_run[0]))


def test_another_seed_gives_another_set(reference_run, tmp_path):
    dcjax.condense(tiny_config(seed=1), str(tmp_path))
    assert not np.array_equal(synthetic(tmp_path), synthetic(reference_run[0]))


def test_stopped_and_restarted_run_is_bit_identical(reference_run, tmp_path):
    dcjax.condense(tiny_config(num_iterations=2), str(tmp_path))
    shutil.rmtree(tmp_path / "synthetic")
    dcjax.condense(tiny_config(num_iterations=4), str(tmp_path))
    np.testing.assert_array_equal(synthetic(tmp_path), synthetic(reference_run[0]))


def test_outer_step_is_traced_once():
    config = tiny_config()
    dataset = data_lib.load("digits")
    module = configuration.model_from_config(config, dataset.num_classes, dataset.image_shape)
    layout = sharding.class_layout(config, dataset.num_classes)
    step = jax.jit(chex.assert_max_traces(condense_lib.outer_iteration_function(module, config, layout), n=1))
    state = condense_lib.place_state(condense_lib.init_state(config, dataset), layout)
    for _ in range(3):
        state, loss = step(state, dataset)
    assert int(state.iteration) == 3 and np.isfinite(float(loss))
    production = condense_lib.make_outer_iteration(module, config, layout)
    for _ in range(2):
        state, _ = production(state, dataset)
    assert production._cache_size() == 1


def test_resume_with_a_changed_config_is_refused(tmp_path):
    dcjax.condense(tiny_config(num_iterations=1), str(tmp_path))
    with pytest.raises(ConfigError, match="lr_img"):
        dcjax.condense(tiny_config(num_iterations=2, lr_img=0.5), str(tmp_path))


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    dcjax.condense(tiny_config(num_iterations=1), str(tmp_path))
    state_dir = tmp_path / "checkpoints" / "1" / "state"
    for root, _, files in os.walk(state_dir):
        for name in files:
            if name not in ("commit_success.txt",):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        dcjax.condense(tiny_config(num_iterations=2), str(tmp_path))


def test_missing_or_foreign_synthetic_set_gives_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no synthetic set"):
        dcjax.load_synthetic(str(tmp_path / "nowhere"))
    (tmp_path / "not_a_set").mkdir()
    with pytest.raises(CheckpointError, match="not a dcjax synthetic set"):
        dcjax.load_synthetic(str(tmp_path / "not_a_set"))


def test_export_npz_round_trip(reference_run, tmp_path):
    synset = dcjax.load_synthetic(str(reference_run[0]))
    path = dcjax.export_npz(synset, str(tmp_path / "set.npz"))
    again = dcjax.load_synthetic(path)
    np.testing.assert_array_equal(again.images, synset.images)
    assert again.metadata["dataset"] == "digits"


def test_real_init_starts_from_real_images_of_each_class():
    config = tiny_config(init="real")
    dataset = data_lib.load("digits")
    state = condense_lib.init_state(config, dataset)
    x_train, y_train = np.asarray(dataset.x_train), np.asarray(dataset.y_train)
    for c in range(dataset.num_classes):
        for image in np.asarray(state.images[c]):
            matches = np.where(np.all(x_train == image, axis=(1, 2, 3)))[0]
            assert len(matches) >= 1 and np.all(y_train[matches] == c)


def test_command_line_reports_bad_config_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "bin", "condense.py"), f"--config={REPO}/configs/digits.py",
         "--config.ipc=0", f"--workdir={tmp_path / 'w'}"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: config.ipc must be")
    assert not (tmp_path / "w").exists()


def test_batch_norm_network_condenses_and_is_evaluated_as_its_instance_norm_twin(tmp_path):
    config = tiny_config(model="ConvNetBN", num_iterations=2, bn_batch_per_class=4,
                         **{"eval.num_models": 1, "eval.epochs": 1})
    summary = condense_and_evaluate(config, str(tmp_path))
    assert np.isfinite(summary["evaluation"]["mean"])
    assert summary["evaluation"]["model"]["norm"] == "instance"
    assert dcjax.load_synthetic(str(tmp_path)).metadata["model_fields"]["norm"] == "batch"


def _tree_snapshot(root):
    return {os.path.relpath(os.path.join(d, f), root): os.path.getmtime(os.path.join(d, f))
            for d, _, files in os.walk(root) for f in files}


def test_second_run_on_a_busy_workdir_is_refused_and_touches_nothing(reference_run, tmp_path):
    from dcjax.support.lock import WorkdirBusyError, WorkdirLock
    workdir = tmp_path / "busy"
    shutil.copytree(reference_run[0], workdir)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; sys.path.insert(0, sys.argv[1]); from dcjax.support.lock import WorkdirLock\n"
                               "with WorkdirLock(sys.argv[2]):\n    print('held', flush=True); time.sleep(60)",
                               REPO, str(workdir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _tree_snapshot(workdir)
        with pytest.raises(WorkdirBusyError, match=rf"another dcjax run \(pid {holder.pid}\) is using .*busy; "
                                                   r"wait for it to finish or use another --workdir"):
            dcjax.condense(tiny_config(num_iterations=6), str(workdir))
        assert _tree_snapshot(workdir) == before
    finally:
        holder.kill()
        holder.wait()
    with WorkdirLock(str(workdir)):   # released when its holder died (even by SIGKILL)
        pass


TINY_FLAGS = ["--config.ipc=2", "--config.net.width=8", "--config.net.depth=2", "--config.batch_real=8",
              "--config.outer_loop=2", "--config.inner_loop=2", "--config.batch_train=8",
              "--config.eval.num_models=0", "--config.class_parallel=vmap", "--config.log_every=1"]


def _condense_command(workdir, iterations, checkpoint_every):
    return [sys.executable, os.path.join(REPO, "bin", "condense.py"), f"--config={REPO}/configs/common.py",
            f"--workdir={workdir}", f"--config.num_iterations={iterations}",
            f"--config.checkpoint_every={checkpoint_every}", *TINY_FLAGS]


def test_sigterm_saves_a_checkpoint_exits_143_and_the_resumed_run_is_bit_identical(tmp_path):
    import signal
    stopped = tmp_path / "stopped"
    # No periodic checkpoint before iteration 1000: the one found afterwards is the signal's.
    proc = subprocess.Popen(_condense_command(stopped, 1000, 1000), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:   # progress lines go to stderr
        if line.startswith("condensing: iteration 2/"):
            proc.send_signal(signal.SIGTERM)
            break
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM after iteration ") and "run the same command again to resume" in last
    done = int(last.split("after iteration ")[1].split(";")[0])
    assert os.listdir(stopped / "checkpoints") == [str(done)]
    assert not (stopped / "synthetic").exists()

    target = done + 2
    resumed = subprocess.run(_condense_command(stopped, target, 1000), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from iteration {done}" in resumed.stderr
    straight = tmp_path / "straight"
    assert subprocess.run(_condense_command(straight, target, 1000), capture_output=True, timeout=300).returncode == 0
    np.testing.assert_array_equal(synthetic(stopped), synthetic(straight))


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_make = condense_lib.make_outer_iteration

    def poisoned_make(module, config, layout):
        step = real_make(module, config, layout)

        def poisoned(state, dataset):
            state, loss = step(state, dataset)
            if int(state.iteration) == 3:   # the update of iteration 3 blows up
                return state.replace(images=state.images * np.nan), loss * np.nan
            return state, loss
        return poisoned

    monkeypatch.setattr(condense_lib, "make_outer_iteration", poisoned_make)
    workdir = tmp_path / "nan"
    with pytest.raises(DcjaxError, match=r"matching loss became nan at iteration 3; the last good checkpoint "
                                         r"\(iteration 2\) is kept in .*; lower config.lr_img and resume"):
        dcjax.condense(tiny_config(num_iterations=6), str(workdir))
    checkpoints = condense_lib.RunCheckpoints(str(workdir))
    assert checkpoints.latest_step() == 2
    template = condense_lib._state_dict(condense_lib.init_state(tiny_config(), data_lib.load("digits")))
    restored, _ = checkpoints.restore(2, template)
    assert np.isfinite(restored["images"]).all()
    assert not (workdir / "synthetic").exists()


def test_run_leaves_tensorboard_scalars_a_plot_and_show_summarises_it(reference_run, tmp_path):
    from dcjax.support import metrics
    workdir, summary = reference_run
    series = metrics.history(str(workdir / "metrics.jsonl"))
    assert sorted(series["matching_loss"]) == [1, 2, 3, 4]
    assert series["eval_accuracy_mean"][4] == pytest.approx(summary["evaluation"]["mean"])
    events = [f for f in os.listdir(workdir / "tensorboard") if f.startswith("events.out.tfevents")]
    assert events and os.path.getsize(workdir / "tensorboard" / events[0]) > 0
    assert (workdir / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    grid = tmp_path / "grid.png"
    shown = subprocess.run([sys.executable, os.path.join(REPO, "bin", "show.py"), str(workdir), f"--grid={grid}"],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert "last 4 (matching loss" in shown.stdout and "checkpoints: 3, 4" in shown.stdout
    assert "synthetic set: 20 images (8, 8, 1), digits ipc 2, iteration 4" in shown.stdout
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = subprocess.run([sys.executable, os.path.join(REPO, "bin", "show.py"), str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: ")


def test_metrics_history_keeps_the_last_record_and_skips_a_torn_line(tmp_path):
    from dcjax.support import metrics
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1, "matching_loss": 5.0}\n{"iteration": 2, "matching_loss": 4.0}\n'
                    '{"iteration": 2, "matching_loss": 3.0}\n{"iteration": 3, "matching_lo')
    assert metrics.history(str(path)) == {"matching_loss": {1: 5.0, 2: 3.0}}


def test_loading_a_set_and_restoring_a_checkpoint_never_unpickle(reference_run, monkeypatch, tmp_path):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("pickle was called while loading")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", functools.partial(np.load, allow_pickle=False))
    workdir, _ = reference_run
    synset = dcjax.load_synthetic(str(workdir))
    exported = dcjax.export_npz(synset, str(tmp_path / "set.npz"))
    np.testing.assert_array_equal(dcjax.load_synthetic(exported).images, synset.images)
    checkpoints = condense_lib.RunCheckpoints(str(workdir))
    template = condense_lib._state_dict(condense_lib.init_state(tiny_config(), data_lib.load("digits")))
    restored, meta = checkpoints.restore(checkpoints.latest_step(), template)
    np.testing.assert_array_equal(restored["images"].reshape(synset.images.shape), synset.images)
    assert meta["config"]["dataset"] == "digits"


def test_sigkill_at_several_points_then_resume_is_bit_identical(tmp_path):
    import signal
    killed, target = tmp_path / "killed", 12
    for lines_before_kill in (1, 2, 1):   # each run resumes where the last one's newest checkpoint was
        proc = subprocess.Popen(_condense_command(killed, target, 2), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        seen = 0
        for line in proc.stderr:
            seen += line.startswith("condensing: iteration ")
            if seen == lines_before_kill:
                # The line is logged just before that iteration's checkpoint is written: the kill
                # lands during the write, or in the next iteration.
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=300)
        assert proc.returncode == -signal.SIGKILL
        assert not (killed / "synthetic").exists()
    finished = subprocess.run(_condense_command(killed, target, 2), capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    straight = tmp_path / "straight"
    assert subprocess.run(_condense_command(straight, target, 2), capture_output=True, timeout=300).returncode == 0
    np.testing.assert_array_equal(synthetic(killed), synthetic(straight))


def test_png_folder_export_has_every_image_in_its_class_folder(reference_run, tmp_path):
    from PIL import Image
    synset = dcjax.load_synthetic(str(reference_run[0]))
    out = dcjax.export_pngs(synset, str(tmp_path / "pngs"))
    folders = sorted(os.listdir(out))
    assert folders == [f"{c:03d}_{name}" for c, name in enumerate(synset.metadata["class_names"])]
    assert all(len(os.listdir(os.path.join(out, f))) == 2 for f in folders)   # ipc 2
    first = np.asarray(Image.open(os.path.join(out, folders[0], sorted(os.listdir(os.path.join(out, folders[0])))[0])))
    np.testing.assert_allclose(first / 255.0, synset.denormalised()[0, ..., 0], atol=0.5 / 255 + 1e-6)
    with pytest.raises(FileExistsError, match="choose a new directory"):
        dcjax.export_pngs(synset, out)
