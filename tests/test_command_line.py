"""bin/condense.py as a user meets it: the default workdir, a second Ctrl-C, evaluation progress,
and the recipe bin/evaluate.py trains a saved set with."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import dcjax
from dcjax import baselines, data
from dcjax.errors import DataError
from dcjax.evaluate import EvalRecipe
from test_condense import REPO, TINY_FLAGS, tiny_config

CONDENSE = [sys.executable, os.path.join(REPO, "bin", "condense.py")]


def test_without_workdir_a_run_goes_to_runs_config_name_and_says_so(tmp_path):
    result = subprocess.run(CONDENSE + [f"--config={REPO}/configs/digits.py", "--config.num_iterations=1",
                                        *TINY_FLAGS], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "workdir: runs/digits (give --workdir to choose another)" in result.stderr.splitlines()[0]
    assert (tmp_path / "runs" / "digits" / "synthetic").is_dir()


def test_default_workdir_names_the_config_and_its_argument():
    sys.path.insert(0, os.path.join(REPO, "bin"))
    try:
        from _common import default_workdir
    finally:
        sys.path.pop(0)
    assert default_workdir("configs/cifar10_ipc10.py") == os.path.join("runs", "cifar10_ipc10")
    assert default_workdir("configs/cpu_protocol.py:10") == os.path.join("runs", "cpu_protocol_10")


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    # Iterations of ~10 s here (a long inner update), a checkpoint after each one.
    workdir = tmp_path / "w"
    command = CONDENSE + [f"--config={REPO}/configs/common.py", f"--workdir={workdir}", "--config.num_iterations=100",
                          "--config.checkpoint_every=1", *TINY_FLAGS, "--config.inner_loop=10000"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
        if line.startswith("condensing: iteration 1/"):
            break
    time.sleep(1.0)   # both signals in the middle of iteration 2
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    sent = time.time()
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    waited = time.time() - sent
    assert proc.returncode == 130, output
    assert "stopped at once by a second SIGINT; the newest checkpoint on disk is kept" in output.strip().splitlines()[-1]
    assert waited < 3.0, waited   # against ~10 s for the rest of the iteration
    assert os.listdir(workdir / "checkpoints") == ["1"]
    assert not (workdir / "synthetic").exists()


def test_the_final_evaluation_shows_progress_network_by_network(tmp_path):
    result = subprocess.run(CONDENSE + [f"--config={REPO}/configs/common.py", f"--workdir={tmp_path / 'w'}",
                                        "--config.num_iterations=1", *TINY_FLAGS, "--config.eval.num_models=2",
                                        "--config.eval.epochs=20"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("evaluating the final set: epoch ")]
    assert lines and "(network 2/2, epoch 21/21)" in lines[-1] and "eta" in lines[-1]
    assert any("(network 1/2" in line for line in lines)


def test_evaluate_reports_every_network_up_to_its_last_epoch():
    dataset = data.load("digits")
    synset = baselines.random_real(dataset, 1, jax.random.PRNGKey(0))
    heard = []
    for parallel in ("map", "vmap"):
        heard.clear()
        dcjax.evaluate(dcjax.get_model("MLP", 10, width=8), synset.images, synset.labels, dataset.x_test,
                       dataset.y_test, jax.random.PRNGKey(1), 3, EvalRecipe(epochs=9, parallel=parallel),
                       progress=lambda network, epochs: heard.append((network, epochs)))
        last = {}
        for network, epochs in heard:
            assert epochs >= last.get(network, 0)
            last[network] = epochs
        assert last == {0: 10, 1: 10, 2: 10}, parallel


def test_init_real_with_more_images_than_a_class_has_is_a_clear_error(tmp_path):
    smallest = int(np.min(np.asarray(data.load("digits").class_counts)))
    with pytest.raises(DataError, match=rf"config.init='real' starts from {smallest + 1} distinct real images per "
                                        rf"class, but the smallest digits class has {smallest}; set config.ipc <= "
                                        rf"{smallest} or config.init='noise'"):
        dcjax.condense(tiny_config(init="real", ipc=smallest + 1), str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_bin_evaluate_trains_a_set_with_the_recipe_it_records(tmp_path):
    dataset = data.load("digits")
    synset = baselines.random_real(dataset, 1, jax.random.PRNGKey(0))
    recorded = EvalRecipe(epochs=2, augmentation="crop", batch_size=8)
    synset.metadata["eval_recipe"] = dict(recorded.__dict__)
    dcjax.save_synthetic(str(tmp_path / "synthetic"), synset)
    result = subprocess.run([sys.executable, os.path.join(REPO, "bin", "evaluate.py"), f"--set={tmp_path}",
                             "--models=MLP", "--num_models=1"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.load(open(tmp_path / "evaluation.json"))["recipe"] == dict(recorded.__dict__)
    # A flag changes only its own field.
    result = subprocess.run([sys.executable, os.path.join(REPO, "bin", "evaluate.py"), f"--set={tmp_path}",
                             "--models=MLP", "--num_models=1", "--epochs=1"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.load(open(tmp_path / "evaluation.json"))["recipe"] == {**recorded.__dict__, "epochs": 1}


def test_a_set_without_a_recipe_gets_the_papers_recipe_for_its_dataset():
    assert EvalRecipe.of_set({"dataset": "mnist"}) == EvalRecipe(epochs=1000, augmentation="crop_scale_rotate")
    assert EvalRecipe.of_set({"dataset": "cifar10"}) == EvalRecipe()
