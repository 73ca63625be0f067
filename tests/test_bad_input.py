"""Bad input through the command line: one `error:` line naming the field and the fix, exit 2, workdir untouched."""
import os
import shutil
import subprocess
import sys

import pytest

import dcjax
from test_condense import REPO, _tree_snapshot

CONDENSE = [sys.executable, os.path.join(REPO, "bin", "condense.py")]
DIGITS = f"--config={REPO}/configs/digits.py"
TINY = ["--config.net.width=8", "--config.net.depth=2", "--config.num_iterations=2", "--config.eval.num_models=0"]


@pytest.fixture(scope="module")
def finished_workdir(tmp_path_factory):
    """A finished tiny run (digits config shape) whose files every bad command must leave alone."""
    workdir = tmp_path_factory.mktemp("finished")
    result = subprocess.run(CONDENSE + [DIGITS, f"--workdir={workdir}"] + TINY, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return workdir


def _snapshot(workdir):
    # .lock is the run lock's bookkeeping (it holds the pid of the last holder), not a result.
    return {k: v for k, v in _tree_snapshot(workdir).items() if k != ".lock"}


BAD_FLAGS = [
    (["--config.ipc=0"], "error: config.ipc must be an integer >= 1, got 0"),
    (["--config.num_iterations=-1"], "error: config.num_iterations must be >= 0, got -1"),
    (["--config.lr_img=0"], "error: config.lr_img must be > 0, got 0"),
    (["--config.lr_net=-0.1"], "error: config.lr_net must be > 0, got -0.1"),
    (["--config.batch_real=0"], "error: config.batch_real must be >= 1, got 0"),
    (["--config.batch_real=100000"], "error: config.batch_real=100000 but digits class"),
    (["--config.checkpoint_every=0"], "error: config.checkpoint_every must be >= 1, got 0"),
    (["--config.momentum_img=1.5"], "error: config.momentum_img must be in [0, 1), got 1.5"),
    (["--config.metric=l2"], "error: config.metric must be one of ('ours', 'mse', 'cos'), got 'l2'"),
    (["--config.init=zeros"], "error: config.init must be one of"),
    (["--config.outer_loop=0"], "error: config.outer_loop must be >= 1 and config.inner_loop >= 0, got 0"),
    (["--config.class_chunk=0"], "error: config.class_chunk must be unset or >= 1, got 0"),
    (["--config.class_parallel=threads"], "error: config.class_parallel must be one of"),
    (["--config.eval.num_models=-2"], "error: config.eval.num_models must be >= 0, got -2"),
    (["--config.eval.epochs=-1"], "error: config.eval.epochs must be >= 0, got -1"),
    (["--config.eval.parallel=pmap"], "error: config.eval.parallel must be 'auto', 'vmap' or 'map', got 'pmap'"),
    (["--config.dataset=imagenet"], "error: unknown dataset 'imagenet'"),
    (["--config.data_source=npz"], "error: no digits.npz found at data_dir=None; set config.data_dir"),
    (["--config.model=ResNet99"], "error: unknown model 'ResNet99'"),
    (["--config.net.norm=weird"], "error: model field norm='weird' is not one of ('none', 'batch'"),
    (["--config.ipc=3"], "error: the config differs from the run in"),   # a config changed under the workdir
]


@pytest.mark.parametrize("flags,message", BAD_FLAGS, ids=[f[0][0].split("=")[0][2:] + "=" + f[0][0].split("=")[1]
                                                          for f in BAD_FLAGS])
def test_bad_config_is_one_line_exit_2_and_leaves_the_workdir_alone(finished_workdir, flags, message):
    before = _snapshot(finished_workdir)
    result = subprocess.run(CONDENSE + [DIGITS, f"--workdir={finished_workdir}"] + TINY + flags,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(message), last
    assert "Traceback" not in result.stderr
    assert _snapshot(finished_workdir) == before


def test_bad_data_file_and_corrupt_checkpoint_and_unwritable_workdir(finished_workdir, tmp_path):
    not_npz = tmp_path / "digits.npz"
    not_npz.write_text("this is not an npz file")
    cases = [(["--config.data_source=npz", f"--config.data_dir={not_npz}"], tmp_path / "w1",
              f"error: cannot read {not_npz} as a plain .npz"),
             ([], tmp_path / "a_file" / "w2", f"error: cannot use {tmp_path / 'a_file' / 'w2'} as the workdir "
                                              "(Not a directory); give a --workdir")]
    (tmp_path / "a_file").write_text("a file where a directory should be")
    for flags, workdir, prefix in cases:
        result = subprocess.run(CONDENSE + [DIGITS, f"--workdir={workdir}"] + TINY + flags,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(prefix) and "Traceback" not in result.stderr
        assert not workdir.exists()

    damaged = tmp_path / "damaged"
    shutil.copytree(finished_workdir, damaged)
    shutil.rmtree(damaged / "synthetic")
    latest = max(int(d) for d in os.listdir(damaged / "checkpoints") if d.isdigit())
    for root, _, files in os.walk(damaged / "checkpoints" / str(latest) / "state"):
        for name in files:
            with open(os.path.join(root, name), "r+b") as f:
                f.truncate(3)
    before = _snapshot(damaged)
    result = subprocess.run(CONDENSE + [DIGITS, f"--workdir={damaged}", "--config.num_iterations=4"] + TINY[:2]
                            + TINY[3:], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: checkpoint {damaged}/checkpoints/{latest} "
                                                             "is damaged or incomplete")
    assert _snapshot(damaged) == before


def test_loading_something_that_is_not_a_set_is_a_clear_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(dcjax.CheckpointError, match="no synthetic set at"):
        dcjax.load_synthetic(str(tmp_path / "missing"))
    with pytest.raises(dcjax.CheckpointError, match="is not a dcjax synthetic set"):
        dcjax.load_synthetic(str(tmp_path))
